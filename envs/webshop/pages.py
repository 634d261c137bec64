"""The WebShop site as a state machine: pages, what is clickable on each, and their text.

This mirrors the original's ``SimServer.receive`` and its Jinja templates without Flask, HTML or
BeautifulSoup: each page is the list of texts the original's text mode keeps (visible strings in
document order), joined with " [SEP] ". Clickables are what the original's
``get_available_actions`` collects: button texts and product ASINs lower-cased, option values as
they are (already lower-cased by the loader).

Pages: search -> results (10 per page, "< Prev" from page 2, "Next >" always, as the original)
-> item (option radios, Title, Price, Rating, Description/Features/Reviews, Buy Now) -> sub-page
("< Prev" returns to the item) -> done. "Back to Search" works from every page but the search
page and clears the session; "< Prev" on an item page returns to its results page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rlpost.envs.webshop.engine import PRODUCT_WINDOW, Shop

BACK_TO_SEARCH, NEXT_PAGE, PREV_PAGE, END_BUTTON = "back to search", "next >", "< prev", "buy now"
SUB_PAGES = {"description": "Description", "features": "Features", "reviews": "Reviews"}
SEP = " [SEP] "


@dataclass
class Session:
    """Everything the next page depends on. `anchor()` names it (equal anchors, equal pages)."""

    page: str = "search"  # search | results | item | sub | done
    keywords: tuple[str, ...] = ()
    page_num: int = 1
    results: list[str] = field(default_factory=list)
    """ASINs of the current search, best first (the original re-runs the search; same result)."""
    asin: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    sub_page: str | None = None

    def anchor(self) -> tuple[Any, ...]:
        return (self.page, self.keywords, self.page_num, self.asin,
                tuple(sorted(self.options.items())), self.sub_page)


def search(shop: Shop, s: Session, keywords: list[str], page_num: int = 1) -> None:
    """The results page for `keywords` (lower-cased, split on spaces like the original)."""
    s.page, s.keywords, s.page_num = "results", tuple(keywords), page_num
    s.results = [p["asin"] for p in shop.search(list(keywords))]
    s.asin, s.options, s.sub_page = None, {}, None


def clickables(shop: Shop, s: Session) -> dict[str, tuple[str, str | None]]:
    """Clickable text -> (kind, option group). Kinds: button, product, option."""
    out: dict[str, tuple[str, str | None]] = {}
    if s.page == "search":
        out["search"] = ("button", None)
    elif s.page == "results":
        out[BACK_TO_SEARCH] = ("button", None)
        if s.page_num > 1:
            out[PREV_PAGE] = ("button", None)
        out[NEXT_PAGE] = ("button", None)
        for asin in window(s):
            out[asin.lower()] = ("product", None)
    elif s.page == "item":
        out[BACK_TO_SEARCH] = ("button", None)
        out[PREV_PAGE] = ("button", None)
        out.update({k: ("button", None) for k in SUB_PAGES})
        out[END_BUTTON] = ("button", None)
        for name, values in shop.by_asin[s.asin]["options"].items():
            for v in values:
                out[v] = ("option", name)
    elif s.page == "sub":
        out[BACK_TO_SEARCH] = ("button", None)
        out[PREV_PAGE] = ("button", None)
    return out


def click(shop: Shop, s: Session, target: str, kind: str, group: str | None) -> bool:
    """Apply a click on an available clickable. Returns True when it was Buy Now."""
    if target == END_BUTTON:
        s.page = "done"
        return True
    if target == BACK_TO_SEARCH:
        s.page, s.keywords, s.page_num, s.results = "search", (), 1, []
        s.asin, s.options, s.sub_page = None, {}, None
    elif target == NEXT_PAGE and s.page == "results":
        s.page_num += 1
    elif target == PREV_PAGE and s.page == "results":
        s.page_num -= 1
    elif target == PREV_PAGE and s.page == "sub":
        s.page, s.sub_page = "item", None
    elif target == PREV_PAGE and s.page == "item":
        s.page, s.asin, s.options = "results", None, {}
    elif target in SUB_PAGES and s.page == "item":
        s.page, s.sub_page = "sub", SUB_PAGES[target]
    elif kind == "product":
        s.page, s.asin = "item", target.upper()
    elif kind == "option" and group is not None:
        s.options[group] = target
    return False


def window(s: Session) -> list[str]:
    start = (s.page_num - 1) * PRODUCT_WINDOW
    return s.results[start:start + PRODUCT_WINDOW]


def render(shop: Shop, s: Session, instruction: str, reward: float | None = None) -> str:
    """The page as the original's text observation mode shows it."""
    head = ["Instruction:", instruction]
    if s.page == "search":
        texts = ["WebShop", *head, "Search"]
    elif s.page == "results":
        texts = [*head, "Back to Search", f"Page {s.page_num} (Total results: {len(s.results)})"]
        texts += ["< Prev", "Next >"] if s.page_num > 1 else ["Next >"]
        for asin in window(s):
            p = shop.by_asin[asin]
            texts += [asin, p["Title"], p["Price"]]
    elif s.page == "item":
        p = shop.by_asin[s.asin]
        texts = [*head, "Back to Search", "< Prev"]
        for name, values in p["options"].items():
            texts += [name, *values]
        texts += [p["Title"], f"Price: {p['Price']}", f"Rating: {p['Rating']}",
                  "Description", "Features", "Reviews", "Buy Now"]
    elif s.page == "sub":
        p = shop.by_asin[s.asin]
        texts = [*head, "Back to Search", "< Prev"]
        if s.sub_page == "Description":
            texts.append(p["Description"])
        elif s.sub_page == "Features":
            texts += p["BulletPoints"]
        else:
            for r in p["Reviews"]:
                texts += [f'"{r["title"]}"', str(r["score"]), r["body"]]
    else:
        texts = ["Thank you for shopping with us!", "Your score (min 0.0, max 1.0)",
                 f"{reward if reward is not None else 0.0}"]
    return SEP.join(t.strip() for t in texts if t.strip())
