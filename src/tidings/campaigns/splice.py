"""A campaign's messages as fixed text with the personal parts spliced in.

Rendering every message through the sandbox costs about half a millisecond; most of
what it produces is the same for every recipient. When a template uses the personal
values (the contact, the links, the subject) only in plain `{{ ... }}` outputs, the
campaign is rendered once with a placeholder in each of those places, and a message is
that fixed text with the outputs spliced in: the outputs of one message come from one
small template holding just them, rendered in the same sandbox with the same escaping.

A template that uses a personal value anywhere else (a condition, a loop, a `set`, a
macro's argument, a call) has no plan: each of its messages is rendered in full. The
plain text part is tidied after rendering (`content.tidy_text`); a spliced value that
tidying could change (empty, with blanks at its ends, with line breaks or brackets)
makes that message's text rendered in full too. A property test renders random
templates for random contacts both ways and compares them byte for byte
(tests/campaigns/test_splice.py).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jinja2 import Undefined, meta, nodes
from markupsafe import escape

from tidings.campaigns import content
from tidings.campaigns.sandbox import GuardedTemplate, TemplateError, environment, run

# The values that differ from one message to the next.
PERSONAL = frozenset({"contact", "unsubscribe_url", "preferences_url", "subject", "preheader"})
# What a spliced output may also read: the campaign's own fields.
READABLE = PERSONAL | {"campaign"}
# Expressions a spliced output may be made of: values, their parts, operators, filters
# and tests; never a call (a cycler or joiner would keep state between outputs).
_PURE = (
    nodes.Name,
    nodes.Const,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Filter,
    nodes.Test,
    nodes.CondExpr,
    nodes.Concat,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
    nodes.Add,
    nodes.Sub,
    nodes.Mul,
    nodes.Div,
    nodes.FloorDiv,
    nodes.Mod,
    nodes.Slice,
    nodes.Tuple,
    nodes.List,
    nodes.Keyword,
)
# Filters whose output is not a function of their input alone.
_IMPURE_FILTERS = frozenset({"random"})

_MARK = re.compile("\ue000(\\d+)\ue001")
_SEPARATOR = "\x1f"
# A text value tidying leaves alone when spliced: not empty, no blanks at its ends, no
# line break, no brackets (tidy_text's rules look at those).
_TIDY_NEUTRAL = re.compile(r"[^\s\[\]()](?:[^\n\r\[\]()]*[^\s\[\]()])?")


def personal_names(source: str, *, html: bool) -> frozenset[str]:
    """The personal values a template uses anywhere (none: it renders the same for all)."""
    return (
        frozenset(meta.find_undeclared_variables(environment(html=html).parse(source))) & PERSONAL
    )


def _is_pure(expression: nodes.Node) -> bool:
    for node in [expression, *expression.find_all(nodes.Node)]:
        if not isinstance(node, _PURE):
            return False
        if isinstance(node, nodes.Name) and (node.ctx != "load" or node.name not in READABLE):
            return False
        if isinstance(node, nodes.Filter) and (node.name in _IMPURE_FILTERS or node.dyn_args):
            return False
    return True


def _names(expression: nodes.Node) -> set[str]:
    names = [expression] if isinstance(expression, nodes.Name) else []
    return {n.name for n in [*names, *expression.find_all(nodes.Name)]}


# The filters a simple output may carry, evaluated directly (Jinja's own, on text).
_TEXT_FILTERS: dict[str, Callable[[str], str]] = {
    "upper": str.upper,
    "lower": str.lower,
    "capitalize": str.capitalize,
    "trim": str.strip,
}
_MISSING = object()


def _direct(expression: nodes.Node, *, html: bool) -> Callable[[dict[str, Any]], str] | None:
    """The most common outputs (`contact.name`, `contact.attributes.city`,
    `x | default('friend', true)`, `x | upper`, `unsubscribe_url`) computed without a
    template render, exactly as the sandbox would print them; None for anything else.
    The property test of the mailer compares both ways."""
    node: Any = expression
    text_filters: list[Callable[[str], str]] = []
    fallback: tuple[str, bool] | None = None
    # Filters from the outside in: text filters, then at most one `default` innermost
    # (a text filter inside a default would apply before it).
    while isinstance(node, nodes.Filter):
        if node.name in _TEXT_FILTERS and not node.args and not node.kwargs and fallback is None:
            text_filters.insert(0, _TEXT_FILTERS[node.name])
        elif node.name in ("default", "d") and fallback is None and not node.kwargs:
            args: list[Any] = list(node.args)
            if not (1 <= len(args) <= 2 and all(isinstance(a, nodes.Const) for a in args)):
                return None
            if not isinstance(args[0].value, str):
                return None
            fallback = (args[0].value, bool(args[1].value) if len(args) == 2 else False)
        else:
            return None
        node = node.node
    path: list[str] = []
    while isinstance(node, nodes.Getattr | nodes.Getitem):
        key = node.attr if isinstance(node, nodes.Getattr) else node.arg
        if isinstance(key, nodes.Const):
            key = key.value
        if not isinstance(key, str) or hasattr(dict, key):
            return None  # a dict's own attribute (`items`) resolves differently
        path.insert(0, key)
        node = node.node
    if not isinstance(node, nodes.Name):
        return None
    root = node.name

    def evaluate(context: dict[str, Any]) -> str:
        value: Any = context.get(root, _MISSING)
        for key in path:
            if not isinstance(value, dict):
                raise _NotSimple
            value = dict.get(value, key, _MISSING)
        if isinstance(value, Undefined):
            value = _MISSING
        if value is not _MISSING and not isinstance(value, str | int | float | bool | None):
            raise _NotSimple  # a dict or a list prints as the template would decide
        if fallback is not None:
            default, boolean = fallback
            if value is _MISSING or value is None or value == "" or (boolean and not value):
                value = default
        text = "" if value is _MISSING else str(value)
        for apply in text_filters:
            text = apply(text)
        return str(escape(text)) if html else text

    return evaluate


class _NotSimple(Exception):
    """A value the direct evaluation does not handle: the template renders it."""


@dataclass(frozen=True)
class Part:
    """One template as fixed pieces and the outputs between them: message = pieces[0]
    + value[holes[0]] + pieces[1] + ... The values come from `values` (rendered once per
    message, separated by \\x1f)."""

    pieces: tuple[str, ...]
    holes: tuple[int, ...]
    # The outputs the template renders (all of them, in order), and those that are
    # computed directly instead (see `_direct`; None where the template must).
    values: GuardedTemplate | None
    count: int
    direct: tuple[Callable[[dict[str, Any]], str] | None, ...] = ()
    # The outputs only the template renders, in order: rendered alone when the direct
    # ones can be (a template render per message is the costly part).
    rest: GuardedTemplate | None = None

    def values_for(self, context: dict[str, Any]) -> list[str] | None:
        """This message's values, or None when they cannot be told apart."""
        if self.values is None:
            return []
        try:
            return self._direct_values(context)
        except _NotSimple:
            values = run(self.values, context).split(_SEPARATOR)
            return values if len(values) == self.count else None

    def _direct_values(self, context: dict[str, Any]) -> list[str] | None:
        rendered: list[str] = []
        if self.rest is not None:
            rendered = run(self.rest, context).split(_SEPARATOR)
            if len(rendered) != sum(d is None for d in self.direct):
                return None
        values, taken = [], iter(rendered)
        for evaluate in self.direct:
            values.append(evaluate(context) if evaluate is not None else next(taken))
        return values

    def join(self, values: list[str]) -> str:
        out = [self.pieces[0]]
        for hole, piece in zip(self.holes, self.pieces[1:], strict=True):
            out.append(values[hole])
            out.append(piece)
        return "".join(out)


def plan(
    source: str, *, html: bool, context: dict[str, Any], personal: frozenset[str] = PERSONAL
) -> Part | None:
    """The parts of the template `source` rendered with the campaign's `context`
    (everything but the `personal` values: a subject that is the same for everyone is in
    the context instead), or None when it cannot be spliced."""
    env = environment(html=html)
    try:
        tree = env.parse(source)
    except Exception:
        return None
    holes: list[nodes.Expr] = []
    for output in tree.find_all(nodes.Output):
        children = []
        for child in output.nodes:
            if not isinstance(child, nodes.TemplateData) and _names(child) & personal:
                if not _is_pure(child):
                    return None
                if child not in holes:  # the same output twice is rendered once
                    holes.append(child)
                mark = nodes.Const(f"\ue000{holes.index(child)}\ue001")
                child = nodes.MarkSafe(mark) if html else mark
            children.append(child)
        output.nodes = children
    # A personal value anywhere but in a spliced output (a condition, a loop, a set,
    # a call's argument) makes the output depend on it in ways splicing cannot follow.
    if any(n.name in personal for n in tree.find_all(nodes.Name)):
        return None
    try:
        fixed = run(_compile(env, tree), context)
    except TemplateError:
        return None
    if "\ue000" in source or _SEPARATOR in fixed.replace("\ue000", ""):
        return None
    pieces, found, at = [], [], 0
    for match in _MARK.finditer(fixed):
        pieces.append(fixed[at : match.start()])
        found.append(int(match.group(1)))
        at = match.end()
    pieces.append(fixed[at:])
    direct = tuple(_direct(hole, html=html) for hole in holes)
    values = _outputs(env, holes) if holes else None
    rest_holes = [hole for hole, d in zip(holes, direct, strict=True) if d is None]
    rest = _outputs(env, copy.deepcopy(rest_holes)) if rest_holes else None
    return Part(tuple(pieces), tuple(found), values, len(holes), direct, rest)


def _outputs(env: Any, holes: list[nodes.Expr]) -> GuardedTemplate:
    """One template that prints `holes`, separated by \x1f."""
    body: list[nodes.Expr] = []
    for index, hole in enumerate(holes):
        if index:
            body.append(nodes.TemplateData(_SEPARATOR))
        body.append(hole)
    return _compile(env, nodes.Template([nodes.Output(body)]))


def _compile(env: Any, tree: nodes.Template) -> GuardedTemplate:
    for node in tree.find_all(nodes.Node):
        node.set_environment(env)
    tree.set_environment(env)
    template = env.template_class.from_code(env, env.compile(tree), env.make_globals(None))
    assert isinstance(template, GuardedTemplate)
    return template


@dataclass(frozen=True)
class TextPlan:
    """The plain-text part: the layout's text with the body's text at `{{ content }}`,
    tidied once, with the personal values spliced in (each must be tidy-neutral)."""

    part: Part
    # For each hole of `part`: (which template's values: 0 body, 1 layout, index there).
    origin: tuple[tuple[int, int], ...]
    body: Part
    layout: Part

    def values(self, context: dict[str, Any]) -> list[str] | None:
        """The message's values in the order of `part`'s holes, or None when one could
        change under tidying (then the text is rendered in full)."""
        body = self.body.values_for(context)
        layout = self.layout.values_for(context)
        if body is None or layout is None:
            return None
        values = [(body, layout)[which][index] for which, index in self.origin]
        if not all(_TIDY_NEUTRAL.fullmatch(v) for v in values):
            return None
        return values

    def text(self, context: dict[str, Any]) -> str | None:
        """The message's text, or None (see `values`)."""
        values = self.values(context)
        return None if values is None else self.part.join(values)


def plan_text(
    body_source: str,
    layout_source: str,
    *,
    context: dict[str, Any],
    personal: frozenset[str] = PERSONAL,
) -> TextPlan | None:
    """The text part's plan, from the text templates of the body and of the layout."""
    layout_context = {**context, "content": "\ue002"}
    body = plan(body_source, html=False, context=context, personal=personal)
    layout = plan(layout_source, html=False, context=layout_context, personal=personal)
    if body is None or layout is None:
        return None
    layout_text = layout.join([f"\ue000L{i}\ue001" for i in range(layout.count)])
    if layout_text.count("\ue002") != 1:
        return None
    body_text = body.join([f"\ue000B{i}\ue001" for i in range(body.count)])
    whole = content.tidy_text(layout_text.replace("\ue002", body_text))
    pieces: list[str] = []
    origin: list[tuple[int, int]] = []
    holes: list[int] = []
    at = 0
    for match in re.finditer("\ue000([BL])(\\d+)\ue001", whole):
        pieces.append(whole[at : match.start()])
        source = (0 if match.group(1) == "B" else 1, int(match.group(2)))
        if source not in origin:
            origin.append(source)
        holes.append(origin.index(source))
        at = match.end()
    pieces.append(whole[at:])
    part = Part(tuple(pieces), tuple(holes), None, len(origin))
    return TextPlan(part, tuple(origin), body, layout)
