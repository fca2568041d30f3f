# -*- coding: utf-8 -*-
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# This file is private to wirespeed.datapath: no stable API, do not import it from elsewhere.
"""The fleet's datapath_info results turned into status.yml's report: data (status.json) and one self-contained
HTML page (index.html: inline CSS, SVG charts, no network); filter/fleet.py hands them over."""

from __future__ import annotations

import html

from ansible_collections.wirespeed.datapath.plugins.plugin_utils._report import failure, health_cell

TOP = 10


def _programs(iface_name, iface):
    """Our programs on one interface in the order packets meet them: XDP chain, then TC ingress and egress."""
    programs = iface.get("programs") or {}
    generic = bool(iface.get("xdp_generic_unexpected"))
    chain_ns = (iface.get("xdp_health") or {}).get("avg_ns")
    placed = [(e["name"], "xdp", e["position"] + 1, iface.get("xdp_mode"), generic, chain_ns)
              for e in iface.get("chain") or []]
    for direction in ("ingress", "egress"):
        placed += [(f["program"], "tc " + direction, f.get("pref"), None, False, None)
                   for f in (iface.get("tc") or {}).get(direction) or [] if f.get("program")]
    out = []
    for name, hook, position, mode, generic_here, ns in placed:
        program = programs.get(name) or {}
        counters = program.get("counters") or {}
        health = program.get("health") or {}
        out.append({
            "interface": iface_name, "hook": hook, "position": position, "program": name, "mode": mode,
            "passed": (counters.get("pass") or {}).get("packets"),
            "dropped": (counters.get("drop") or {}).get("packets"),
            "aborted": health.get("aborted"), "health": health_cell(program, generic_here),
            "xlated_insns": health.get("xlated_insns"),
            "ns_per_run": health.get("avg_ns") if ns is None else ns,
            "drops_by_reason": {r: c["packets"] for r, c in sorted((program.get("drop_reasons") or {}).items())
                                if c["packets"]},
            "top_denied": [dict(t, interface=iface_name, program=name) for t in program.get("top_denied") or []],
        })
    return out


def _host(name, result):
    problem = failure(result)
    if problem:
        return {"name": name, "status": "unreachable" if "UNREACHABLE" in problem else "failed", "error": problem,
                "problems": [problem], "programs": [], "drops_by_reason": {}, "top_denied": [],
                "passed": 0, "dropped": 0}
    programs = []
    for iface_name, iface in sorted((result.get("datapath") or {}).items()):
        programs += _programs(iface_name, iface)
    reasons = {}
    for p in programs:
        for reason, count in p["drops_by_reason"].items():
            reasons[reason] = reasons.get(reason, 0) + count
    problems = list(result.get("problems") or [])
    return {"name": name, "status": "unhealthy" if problems else "healthy", "error": None, "problems": problems,
            "programs": programs, "drops_by_reason": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
            "top_denied": sorted((t for p in programs for t in p["top_denied"]), key=lambda t: -t["packets"])[:TOP],
            "passed": sum(p["passed"] or 0 for p in programs), "dropped": sum(p["dropped"] or 0 for p in programs)}


def fleet_report(hostvars, hosts, generated=""):
    """The report's data: a summary, the problems, and per host its programs, drops by reason and top denied
    entries (status.json, and what fleet_report_html draws)."""
    rows = [_host(h, (hostvars.get(h) or {}).get("wirespeed_status")) for h in hosts]
    count = {s: sum(1 for r in rows if r["status"] == s) for s in ("healthy", "unhealthy", "unreachable", "failed")}
    return {"generated": generated, "summary": dict(count, hosts=len(rows), passed=sum(r["passed"] for r in rows),
                                                    dropped=sum(r["dropped"] for r in rows)),
            "problems": ["%s: %s" % (r["name"], p) for r in rows for p in r["problems"]], "hosts": rows}


# HTML -----------------------------------------------------------------------------------------------------------
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f6f7f9;color:#1d232b}
header{background:#1d232b;color:#fff;padding:18px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#b8c1cc}main{padding:18px 28px;max-width:1200px}
.tiles{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:16px}
.tile{background:#fff;border-radius:8px;padding:10px 16px;min-width:110px;box-shadow:0 1px 2px #0002}
.tile b{display:block;font-size:22px}.tile span{color:#5b6673;font-size:12px;text-transform:uppercase}
.problems{background:#fff4f2;border-left:4px solid #d2372d;padding:8px 16px;border-radius:4px}
.problems li{margin:3px 0}section.host{background:#fff;border-radius:8px;margin:16px 0;padding:12px 18px;
box-shadow:0 1px 2px #0002}section.host h2{margin:4px 0 10px;font-size:17px}
.badge{font-size:12px;padding:2px 8px;border-radius:10px;margin-left:8px;vertical-align:2px;color:#fff}
.healthy{background:#2e8540}.unhealthy{background:#d2372d}.unreachable,.failed{background:#7a6a00}
table{border-collapse:collapse;width:100%;margin-bottom:10px}th,td{text-align:left;padding:4px 8px;
border-bottom:1px solid #e4e7eb;font-variant-numeric:tabular-nums}th{font-size:12px;color:#5b6673}
td.num{text-align:right}td.bad{color:#d2372d;font-weight:600}.charts{display:flex;gap:24px;flex-wrap:wrap}
figure{margin:0;flex:1 1 460px}figcaption{font-weight:600;margin-bottom:4px}.empty{color:#5b6673}
svg text{font:12px system-ui,sans-serif;fill:#1d232b}.bar rect{fill:#3b6fd8}.denied .bar rect{fill:#d2772d}
label.only{float:right;font-size:13px}body.only-unhealthy section.host[data-status=healthy]{display:none}
"""
SCRIPT = """
document.getElementById('only').addEventListener('change', function (e) {
  document.body.classList.toggle('only-unhealthy', e.target.checked);
});
"""


def _e(value):
    return html.escape("-" if value is None else str(value), quote=True)


def bar_chart(items, kind):
    """An SVG of horizontal bars, one per (label, value), longest first; each bar carries its data-value."""
    items = [(label, value) for label, value in items if value]
    if not items:
        return '<p class="empty">none counted</p>'
    top = max(v for _l, v in items)
    width, label_w, row = 600, 240, 24
    parts = ['<svg class="%s" role="img" width="%d" height="%d" viewBox="0 0 %d %d">'
             % (kind, width, row * len(items) + 4, width, row * len(items) + 4)]
    for i, (label, value) in enumerate(items):
        y = i * row + 2
        shown = label if len(label) <= 34 else label[:33] + "\u2026"
        length = max(2, int((width - label_w - 70) * value / top))
        parts.append('<g class="bar" data-label="%s" data-value="%d"><title>%s: %d</title>'
                     '<text x="0" y="%d">%s</text><rect x="%d" y="%d" width="%d" height="%d" rx="2"></rect>'
                     '<text x="%d" y="%d">%d</text></g>'
                     % (_e(label), value, _e(label), value, y + 15, _e(shown), label_w, y + 3, length, row - 8,
                        label_w + length + 6, y + 15, value))
    parts.append("</svg>")
    return "".join(parts)


def _program_table(programs):
    head = ("interface", "hook", "#", "program", "mode", "passed", "dropped", "health", "insns", "ns/run")
    lines = ["<table><thead><tr>%s</tr></thead><tbody>" % "".join("<th>%s</th>" % h for h in head)]
    for p in programs:
        ns = None if p["ns_per_run"] is None else "%.0f" % p["ns_per_run"]
        lines.append("<tr>%s</tr>" % "".join([
            "<td>%s</td>" % _e(p["interface"]), "<td>%s</td>" % _e(p["hook"]), "<td>%s</td>" % _e(p["position"]),
            "<td>%s</td>" % _e(p["program"]), "<td>%s</td>" % _e(p["mode"]),
            '<td class="num">%s</td>' % _e(p["passed"]), '<td class="num">%s</td>' % _e(p["dropped"]),
            '<td class="%s">%s</td>' % ("bad" if p["health"] not in ("ok", "-") else "", _e(p["health"])),
            '<td class="num">%s</td>' % _e(p["xlated_insns"]), '<td class="num">%s</td>' % _e(ns)]))
    lines.append("</tbody></table>")
    return "".join(lines) if programs else '<p class="empty">no XDP or TC programs</p>'


def _host_section(host):
    out = ['<section class="host" id="host-%s" data-status="%s"><h2>%s<span class="badge %s">%s</span></h2>'
           % (_e(host["name"]), _e(host["status"]), _e(host["name"]), _e(host["status"]), _e(host["status"]))]
    if host["error"]:
        out.append('<p class="problems">%s</p></section>' % _e(host["error"]))
        return "".join(out)
    if host["problems"]:
        out.append('<ul class="problems">%s</ul>' % "".join("<li>%s</li>" % _e(p) for p in host["problems"]))
    out.append(_program_table(host["programs"]))
    denied = [("%s (%s/%s)" % (t["entry"], t["program"], t["map"]), t["packets"]) for t in host["top_denied"]]
    out.append('<div class="charts"><figure class="chart" data-chart="drops-by-reason"><figcaption>Drops by reason'
               '</figcaption>%s</figure><figure class="chart denied" data-chart="top-denied"><figcaption>Top denied '
               'entries</figcaption>%s</figure></div></section>'
               % (bar_chart(list(host["drops_by_reason"].items()), "reasons"), bar_chart(denied, "denied")))
    return "".join(out)


def fleet_report_html(report):
    """One self-contained HTML page of fleet_report's data: summary tiles, problems, per host the programs in
    order with mode and health, and SVG bar charts of drops by reason and of the top denied entries."""
    summary = report["summary"]
    tiles = "".join('<div class="tile"><b>%s</b><span>%s</span></div>' % (_e(summary[k]), k)
                    for k in ("hosts", "healthy", "unhealthy", "unreachable", "passed", "dropped"))
    problems = ('<ul class="problems" id="problems">%s</ul>' % "".join("<li>%s</li>" % _e(p)
                                                                       for p in report["problems"])
                if report["problems"] else '<p id="problems" class="empty">No problems.</p>')
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>wirespeed datapath - fleet report</title><style>%s</style></head><body>" % CSS,
        "<header><h1>wirespeed datapath - fleet report</h1><p>%s</p></header><main>"
        % _e("read %s" % report["generated"] if report.get("generated") else "status.yml"),
        '<label class="only"><input type="checkbox" id="only"> only hosts with problems</label>',
        '<div class="tiles">%s</div>' % tiles, problems,
        "".join(_host_section(h) for h in report["hosts"]),
        "</main><script>%s</script></body></html>\n" % SCRIPT])
