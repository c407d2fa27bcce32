"""Comparing two renderings of the same HTML, whatever their whitespace."""
import re


def normalised(html: str) -> list[str]:
    """One tag per line, whitespace between and inside tags collapsed."""
    html = re.sub(r"\{#.*?#\}", "", html)
    html = re.sub(r"\s+", " ", html)
    html = re.sub(r">\s+", ">", html)
    html = re.sub(r"\s+<", "<", html)
    html = re.sub(r"\s+>", ">", html)
    return html.replace("><", ">\n<").strip().splitlines()
