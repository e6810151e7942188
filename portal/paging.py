"""Paging a query: one page of rows and what a pager needs to move through them."""

from dataclasses import dataclass

from sqlalchemy import Select, func, select

from .extensions import db

PAGE_SIZE = 25


@dataclass
class Page:
    """One page of a list."""

    items: list
    total: int
    page: int
    pages: int
    per_page: int = PAGE_SIZE

    @property
    def offset(self) -> int:
        """How many rows come before this page."""
        return (self.page - 1) * self.per_page


def paginate(query: Select, page: int, per_page: int = PAGE_SIZE) -> Page:
    """Page ``page`` of ``query``'s rows; a page before the first or past the last gives
    the first or the last (so a number from the address bar never reaches the database)."""
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    items = db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)).all()
    return Page(items=list(items), total=total, page=page, pages=pages, per_page=per_page)


def page_argument(args, name: str = "page") -> int:
    """The page number in the request's ``name`` argument, 1 when absent or not a number."""
    return args.get(name, 1, type=int) or 1


def search_argument(args, name: str = "q") -> str:
    """The search text in the request's ``name`` argument: at most 200 characters, without
    NUL, which no name or address holds and PostgreSQL refuses in a query's text."""
    return args.get(name, "").replace("\x00", "")[:200]
