"""The key and value codecs of one pinned map: an explicit type name, else the map's BTF, else the input's form."""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ..errors import DatapathError
from ..kernel.maps import DEVMAP, DEVMAP_HASH, LPM_TRIE
from . import codecs
from .btf import Btf, Unsupported, key_codec


class MapTypes:
    """The key and value codecs of one map: explicit names, else the map's BTF, else the input's form."""

    def __init__(self, pinned, key_type=None, value_type=None, keys=(), values=()):
        self.map = pinned
        btf_key = btf_value = None
        with Btf(pinned.info["btf_id"]) as btf:
            if not key_type:
                btf_key = key_codec(btf.codec(pinned.info["btf_key_type_id"], "key"), pinned.type == LPM_TRIE)
            if not value_type:
                btf_value = btf.codec(pinned.info["btf_value_type_id"], "value")
        self.key = self._pick("key", key_type, btf_key, keys, pinned.key_size)
        self.value = self._pick("value", value_type, btf_value, values, pinned.value_size)

    def _pick(self, what, type_name, from_btf, samples, size):
        kind = "%s_type" % what
        if type_name:
            try:
                chosen = codecs.named(type_name, size)
            except ValueError as exc:
                raise DatapathError("%s: %s." % (kind, exc)) from None
            if chosen.size != size:
                raise DatapathError("%s %s is %d bytes but the map at %s has %d-byte %ss; use a %s type of that size."
                                    % (kind, type_name, chosen.size, self.map.path, size, what, what))
            return chosen
        if what == "value" and self.map.type in (DEVMAP, DEVMAP_HASH) and size in (4, 8):
            return codecs.IfindexCodec(4) if size == 4 else devmap_value()
        if isinstance(from_btf, Unsupported):
            from_btf = None
        plain = from_btf is None or isinstance(from_btf, (codecs.IntCodec, codecs.HexCodec))
        if plain:
            guessed = codecs.guess([s for s in samples if s is not None], size, self.map.type == LPM_TRIE)
            if guessed is not None and guessed.size == size:
                return guessed
        if from_btf is not None and from_btf.size == size:
            return from_btf
        if size in (1, 2, 4, 8):
            return codecs.IntCodec(size)
        return codecs.HexCodec(size)


def devmap_value() -> codecs.StructCodec:
    fields = [("ifindex", 0, codecs.IfindexCodec(4)), ("prog_fd", 4, codecs.IntCodec(4))]
    return codecs.StructCodec(8, fields, "struct bpf_devmap_val")
