"""What operators write, read once for the engine's codecs and the controller's filters: a name or a number, and
an address or CIDR network (with the one message for host bits set)."""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import ipaddress


class HostBits(ValueError):
    """A CIDR whose address has bits set past its prefix; `network` is the network it would mean."""

    def __init__(self, text: str, network):
        self.text, self.network = text, network
        super().__init__("%s %s" % (text, self.advice()))

    def advice(self) -> str:
        """The one sentence end every caller uses: 'has host bits set; write the network as 10.0.0.0/8'."""
        return "has host bits set; write the network as %s" % self.network


def network(text: str):
    """The network an address or CIDR names, strictly: HostBits when host bits are set, ValueError when the text
    is no address or CIDR at all."""
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError("%r is not an IP address or CIDR network" % (text,)) from exc
        raise HostBits(text, loose) from None


def name_or_number(value: object, names: dict, low: int | None = None, high: int | None = None) -> int | None:
    """The number that a name of `names` (any case, spaces around ignored) stands for, or, given a range, a number
    from low to high; None when the value is neither (the caller names the input in its own sentence)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().lower() in names:
        return names[value.strip().lower()]
    if low is None or high is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if low <= number <= high else None
