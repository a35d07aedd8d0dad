"""``{% capture name %}...{% endcapture %}``: render a block once and show it wherever ``{{ name }}`` follows.

The header shows both navigations twice (the wide layout and the phone menu); rendering each once saves every page
two template includes. The captured text is the engine's own output, already escaped.
"""

from __future__ import annotations

from django.template import Library, Node, NodeList, TemplateSyntaxError

register = Library()


class CaptureNode(Node):
    def __init__(self, nodelist: NodeList, name: str) -> None:
        self.nodelist = nodelist
        self.name = name

    def render(self, context) -> str:
        context[self.name] = self.nodelist.render(context)  # a SafeString: shown as it is
        return ""


@register.tag
def capture(parser, token) -> CaptureNode:
    bits = token.split_contents()
    if len(bits) != 2 or not bits[1].isidentifier():
        raise TemplateSyntaxError("capture takes one variable name: {% capture name %}...{% endcapture %}")
    nodelist = parser.parse(("endcapture",))
    parser.delete_first_token()
    return CaptureNode(nodelist, bits[1])
