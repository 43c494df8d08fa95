"""The follow-through report as people read it: markdown (markdown.py), or a self-contained html page
(html.py) with a chart per metric (chart.py); what both say about an action, in words and colours, is in
content.py.

The html page loads nothing from the network (inline CSS, inline SVG, system fonts), so it can be mailed,
archived or opened offline and look the same.
"""
