# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleet_report and fleet_report_html: status.yml's report data, and one page that draws it."""

from html.parser import HTMLParser

from test_report import DATAPATH, unhealthy_datapath

from ansible_collections.wirespeed.datapath.plugins.plugin_utils._fleet import fleet_report, fleet_report_html


def top(entry, packets):
    return {"map": "deny_v4", "entry": entry, "packets": packets}


def hostvars():
    sick = unhealthy_datapath()
    sick["eth0"]["programs"]["firewall"]["top_denied"] = [top("203.0.113.7", 9), top("<script>", 1)]
    return {"h1": {"wirespeed_status": {"datapath": DATAPATH, "problems": []}},
            "h2": {"wirespeed_status": {"datapath": sick, "problems": ["eth0/firewall: 12 packets ended in "
                                                                       "XDP_ABORTED."]}},
            "h3": {"wirespeed_status": {"unreachable": True, "msg": "ssh: timed out"}}}


def test_the_data_sums_the_fleet_and_orders_each_hosts_programs_as_packets_meet_them():
    report = fleet_report(hostvars(), ["h1", "h2", "h3"], "2026-12-02T14:00:00Z")
    assert report["summary"] == {"hosts": 3, "healthy": 1, "unhealthy": 1, "unreachable": 1, "failed": 0,
                                 "passed": 274, "dropped": 26}
    h1, h2, h3 = report["hosts"]
    assert [(p["hook"], p["program"]) for p in h1["programs"]] == [
        ("xdp", "firewall"), ("tc ingress", "mirror"), ("tc egress", "tcdrop"), ("tc egress", "old")]
    assert h1["drops_by_reason"] == {"deny_addr": 10, "deny_port": 3}
    assert h2["status"] == "unhealthy" and h2["programs"][0]["health"] == "ABORTED=12,GENERIC"
    assert [t["entry"] for t in h2["top_denied"]] == ["203.0.113.7", "<script>"]
    assert h3["status"] == "unreachable" and h3["programs"] == []
    assert report["problems"] == ["h2: eth0/firewall: 12 packets ended in XDP_ABORTED.",
                                  "h3: UNREACHABLE: ssh: timed out"]


class Page(HTMLParser):
    """What a test needs of the page: bars per chart and host, scripts and anything fetched from elsewhere."""

    def __init__(self):
        super().__init__()
        self.bars, self.remote, self.stack, self.scripts = [], [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("section", "figure"):
            self.stack.append(attrs)
        if tag == "g" and attrs.get("class") == "bar":
            host = next(a["id"] for a in reversed(self.stack) if "id" in a)
            chart = next(a["data-chart"] for a in reversed(self.stack) if "data-chart" in a)
            self.bars.append((host, chart, attrs["data-label"], int(attrs["data-value"])))
        if tag == "script":
            self.scripts += 1
        self.remote += [v for k, v in attrs.items() if k in ("src", "href") and v and "//" in v]

    def handle_endtag(self, tag):
        if tag in ("section", "figure"):
            self.stack.pop()


def test_the_page_draws_a_bar_per_reason_and_denied_entry_and_needs_no_network():
    page = Page()
    page.feed(fleet_report_html(fleet_report(hostvars(), ["h1", "h2", "h3"], "now")))
    assert ("host-h1", "drops-by-reason", "deny_addr", 10) in page.bars
    assert ("host-h1", "drops-by-reason", "deny_port", 3) in page.bars
    assert ("host-h2", "top-denied", "203.0.113.7 (firewall/deny_v4)", 9) in page.bars
    assert ("host-h2", "top-denied", "<script> (firewall/deny_v4)", 1) in page.bars  # escaped, not run
    assert page.scripts == 1 and page.remote == []
