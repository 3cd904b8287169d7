"""HTML turned into the plain text Dozor stores: line breaks kept, links kept as addresses.

Shared by the readers of HTML (the t.me/s preview, HTML inside RSS/Atom entries). Parsing is
selectolax (lexbor): fast, and tolerant of the broken markup found in the wild.
"""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser, LexborNode

_BLOCK_TAGS = frozenset(
    {
        "blockquote",
        "pre",
        "div",
        "p",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "table",
        "figure",
        "figcaption",
        "section",
        "article",
        "header",
        "footer",
        "hr",
    }
)
_SKIPPED_TAGS = frozenset({"script", "style", "template", "svg", "head", "noscript", "iframe"})


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment (entities decoded, tags dropped, links kept)."""
    if "<" not in html and "&" not in html:
        return html.strip()
    tree = LexborHTMLParser(html)
    root = tree.body
    if root is None:
        return ""
    return node_text(root)


def node_text(root: LexborNode) -> str:
    """Plain text of a message: `<br>` → newline, links as `text (url)`, emoji as characters.

    Walks the tree with an explicit stack: a hostile page can nest tags thousands deep, which
    would overflow Python's recursion limit.
    """
    out: list[str] = []
    # (node, None) is a node to visit; (element, start) closes an element whose text is out[start:]
    stack: list[tuple[LexborNode, int | None]] = [
        (child, None) for child in reversed(list(root.iter(include_text=True)))
    ]
    while stack:
        node, start = stack.pop()
        if start is not None:
            _close_element(node, out, start)
            continue
        if node.is_text_node:
            out.append(node.text_content or "")  # entities are already decoded by the parser
            continue
        if not node.is_element_node:
            continue  # comments
        tag = node.tag or ""
        if tag == "br":
            out.append("\n")
            continue
        if tag in _SKIPPED_TAGS:
            continue
        if tag in _BLOCK_TAGS:
            _line_break(out)
        stack.append((node, len(out)))
        stack.extend((child, None) for child in reversed(list(node.iter(include_text=True))))
    return "".join(out).strip()


def _line_break(out: list[str]) -> None:
    if out and not out[-1].endswith("\n"):
        out.append("\n")


def _close_element(node: LexborNode, out: list[str], start: int) -> None:
    tag = node.tag or ""
    if tag in _BLOCK_TAGS:
        _line_break(out)
    elif tag == "a":
        text = "".join(out[start:])
        href = (node.attributes.get("href") or "").strip()
        linked = _linked_text(text, href)
        if linked != text:
            del out[start:]
            out.append(linked)


def _linked_text(text: str, href: str) -> str:
    """A link as it should read in plain text: keep the address when the words hide it."""
    # Hashtags (`?q=%23tag`), tg:// links and anything not http(s) add nothing readable.
    if not href.lower().startswith(("https://", "http://")):
        return text
    if not text.strip():
        return href
    shown, target = _bare_url(text), _bare_url(href)
    if shown == target:
        return text
    if text.endswith("…") and target.startswith(_bare_url(text[:-1])):
        return href  # a shortened address: the full one is more useful
    if text.startswith("@") and target == "t.me/" + text[1:].lower():
        return text  # a mention already names the channel
    return f"{text} ({href})"


def _bare_url(url: str) -> str:
    url = url.strip().lower()
    for prefix in ("https://", "http://", "www."):
        url = url.removeprefix(prefix)
    return url.rstrip("/")
