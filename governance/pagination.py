"""One page of a list: what every list page and list API answers."""

from dataclasses import dataclass, field


@dataclass
class Page:
    items: list
    total: int
    page: int
    per_page: int
    extra: dict = field(default_factory=dict)
    more: bool = False  # the count stopped at total: there are more than total - 1 matches

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))
