"""The Jinja2 sandbox campaign templates run in.

Customers write these templates: they must never read settings, files or other
contacts, and never take a worker down. Jinja2's ImmutableSandboxedEnvironment already
refuses internals (`__class__`, `__globals__`, `mro`, ...) and mutation of the data it is
given; on top of it this module bounds the work one render may do with counters and
size checks (the hard limits on time and memory are the render processes',
`renderpool.py`):

- a template is at most MAX_SOURCE characters and cannot include or import another;
- every loop iteration and every call spends one step of a per-render budget
  (MAX_STEPS), so nested loops and recursive macros stop early;
- `range()` gives at most MAX_RANGE numbers;
- no string or list a template builds may exceed MAX_SIZE items, checked *before*
  the operators and filters that multiply sizes (`*`, `**`, `%`, `center`, `indent`,
  `format`, `join`, `replace`, `wordwrap`, `batch`, `slice`, `tojson`, `str.ljust`, ...)
  allocate anything, and after every call and concatenation; a repetition, a list
  concatenation and the filters that print a whole value count what the items hold
  (`[x] * 2000` of a long `x` is gigabytes once printed);
- the whole output is at most MAX_OUTPUT characters.

`lipsum` is gone (a generator of unbounded text); `range`, `dict`, `cycler`, `joiner`
and `namespace` remain. `default` also treats an empty value as missing, so
`{{ contact.first_name | default("there") }}` works for contacts without a name.
"""

from __future__ import annotations

import contextvars
import re
import traceback
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, StrictUndefined, Template, Undefined, nodes
from jinja2.exceptions import SecurityError, TemplateRuntimeError, TemplateSyntaxError
from jinja2.exceptions import TemplateError as JinjaError
from jinja2.filters import FILTERS
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Joiner, Namespace
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

MAX_SOURCE = 200_000
MAX_STEPS = 20_000
MAX_RANGE = 10_000
MAX_SIZE = 200_000
MAX_OUTPUT = 1_000_000
MAX_INT_BITS = 4_096


class TemplateError(ValueError):
    """A template that cannot be used; the message names the line when it is known.
    `limit` tells that it did more work than a message may take (a size, the step
    budget, or the render process's time or memory), not that it is wrong."""

    def __init__(self, message: str, *, line: int | None = None, limit: bool = False) -> None:
        self.line = line
        self.detail = message
        self.limit = limit
        super().__init__(f"line {line}: {message}" if line else message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Crosses from a render process to its caller (renderpool) whole.
        return (_template_error, (self.detail, self.line, self.limit))


def _template_error(message: str, line: int | None, limit: bool) -> TemplateError:
    return TemplateError(message, line=line, limit=limit)


class LimitExceeded(TemplateRuntimeError):
    """A template tried to do more work than one email may need."""


@dataclass
class Budget:
    steps: int = MAX_STEPS


_budget: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "tidings_template_budget", default=None
)


def _spend(steps: int = 1) -> None:
    budget = _budget.get()
    if budget is None:
        return  # only reachable outside GuardedTemplate.render; sizes are still bounded
    budget.steps -= steps
    if budget.steps < 0:
        raise LimitExceeded(
            f"the template does too much work (more than {MAX_STEPS:,} loop steps and calls)"
        )


def _size(value: Any) -> int:
    if isinstance(value, str | bytes | bytearray | list | tuple | dict | set | frozenset):
        return len(value)
    return 0


def _bounded(value: Any) -> Any:
    if _size(value) > MAX_SIZE:
        raise LimitExceeded(f"a value in the template grows past {MAX_SIZE:,} characters")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise LimitExceeded("a number in the template is too large")
    return value


def _weight(value: Any, budget: int = MAX_SIZE) -> int:
    """The characters and items `value` holds, nested lists and dicts included, counted
    until `budget` is passed (then any number above it): what printing it would make."""
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if not isinstance(value, list | tuple | set | frozenset):
        return 0
    total = len(value)
    for item in value:
        if total > budget:
            break
        if isinstance(item, str | bytes | bytearray | list | tuple | dict | set | frozenset):
            total += _weight(item, budget - total)
    return total


def _refuse_if(condition: bool, what: str) -> None:
    if condition:
        raise LimitExceeded(f"{what} would grow past {MAX_SIZE:,} characters")


def _as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


_WIDTHS = re.compile(r"\d{7,}")


def _check_format(fmt: Any, args: Iterable[Any]) -> None:
    """Refuse %- or {}-formats whose widths or precisions would make huge strings."""
    if isinstance(fmt, str) and _WIDTHS.search(fmt):
        raise LimitExceeded("a format width in the template is too large")
    flat: list[Any] = []
    for arg in args:
        flat.extend(arg if isinstance(arg, tuple | list) else [arg])
    if isinstance(fmt, str) and "*" in fmt and any(abs(_as_int(a)) > MAX_SIZE for a in flat):
        raise LimitExceeded("a format width in the template is too large")
    if isinstance(fmt, str) and "{" in fmt and any(abs(_as_int(a)) > MAX_SIZE for a in flat):
        raise LimitExceeded("a format width in the template is too large")


# Filters that can multiply the size of their input, bounded before they allocate.


def _center(value: Any, width: int = 80) -> str:
    _refuse_if(_as_int(width) > MAX_SIZE, "centring")
    return str(FILTERS["center"](value, width))


def _indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    pad = len(width) if isinstance(width, str) else _as_int(width)
    _refuse_if((str(s).count("\n") + 1) * pad > MAX_SIZE, "indenting")
    return str(FILTERS["indent"](s, width, first, blank))


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    _check_format(value, [*args, *kwargs.values()])
    return _bounded(FILTERS["format"](value, *args, **kwargs))


def _wordwrap(environment: Any, s: str, width: int = 79, *args: Any, **kwargs: Any) -> str:
    wrapstring = kwargs.get("wrapstring") or (args[1] if len(args) > 1 else None) or "\n"
    lines = len(s) // max(_as_int(width), 1) + s.count("\n") + 1
    _refuse_if(lines * len(str(wrapstring)) > MAX_SIZE, "wrapping")
    return _bounded(FILTERS["wordwrap"](environment, s, width, *args, **kwargs))


_wordwrap.jinja_pass_arg = FILTERS["wordwrap"].jinja_pass_arg  # type: ignore[attr-defined]


def _join(eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    items = list(value)
    _refuse_if(len(items) * len(str(d)) + _weight(items) > MAX_SIZE, "joining")
    return _bounded(FILTERS["join"](eval_ctx, items, d, attribute))


_join.jinja_pass_arg = FILTERS["join"].jinja_pass_arg  # type: ignore[attr-defined]


def _replace(eval_ctx: Any, s: str, old: str, new: str, count: int | None = None) -> str:
    hits = len(str(s)) + 1 if old == "" else str(s).count(str(old))
    if count is not None:
        hits = min(hits, max(_as_int(count), 0))
    _refuse_if(len(str(s)) + hits * len(str(new)) > MAX_SIZE, "replacing")
    return str(FILTERS["replace"](eval_ctx, s, old, new, count))


_replace.jinja_pass_arg = FILTERS["replace"].jinja_pass_arg  # type: ignore[attr-defined]


def _batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Iterator[list[Any]]:
    _refuse_if(fill_with is not None and _as_int(linecount) > MAX_RANGE, "batching")
    return FILTERS["batch"](value, linecount, fill_with)


def _slice(value: Iterable[Any], slices: int, fill_with: Any = None) -> Iterator[list[Any]]:
    _refuse_if(_as_int(slices) > MAX_RANGE, "slicing")
    return FILTERS["slice"](value, slices, fill_with)


def _tojson(eval_ctx: Any, value: Any, indent: int | None = None) -> Markup:
    _refuse_if(_as_int(indent) > 16, "indenting JSON")
    return _bounded(FILTERS["tojson"](eval_ctx, value, indent))


_tojson.jinja_pass_arg = FILTERS["tojson"].jinja_pass_arg  # type: ignore[attr-defined]


def _printing(name: str) -> Callable[..., Any]:
    """A filter that prints a whole value (`string`, `pprint`, ...), refused before it
    prints one that holds too much."""
    original = FILTERS[name]

    def bounded(value: Any, *args: Any, **kwargs: Any) -> Any:
        _refuse_if(_weight(value) > MAX_SIZE, "printing a value")
        return original(value, *args, **kwargs)

    return bounded


def _default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """Like Jinja's `default`, but an empty value (a contact without a name) is missing too."""
    if isinstance(value, Undefined) or value is None or value == "" or (boolean and not value):
        return default_value
    return value


BOUNDED_FILTERS: dict[str, Callable[..., Any]] = {
    "center": _center,
    "indent": _indent,
    "format": _format,
    "wordwrap": _wordwrap,
    "join": _join,
    "replace": _replace,
    "batch": _batch,
    "slice": _slice,
    "tojson": _tojson,
    "default": _default,
    "d": _default,
    **{name: _printing(name) for name in ("string", "pprint", "e", "escape")},
}

# str methods that take a width or a count and can build a huge string from a small one.
_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


def bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise LimitExceeded(f"range() gives at most {MAX_RANGE:,} numbers in a template")
    return numbers


def _guarded_iteration(iterable: Any) -> Iterator[Any]:
    for item in iterable:
        _spend()
        yield item


def _bounded_concat(pieces: Iterable[str]) -> str:
    out: list[str] = []
    append = out.append
    total = 0
    for piece in pieces:
        total += len(piece)
        if total > MAX_OUTPUT:
            raise LimitExceeded(f"the template's output grows past {MAX_OUTPUT:,} characters")
        append(piece)
    return "".join(out)


class _Guard(NodeTransformer):
    """Wrap every loop's iterable and every `~` concatenation in a budget check, and
    refuse the tags that would reach other templates (files)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Call(
            nodes.EnvironmentAttribute("guarded_iteration"), [node.iter], [], None, None
        ).set_lineno(node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Call(
            nodes.EnvironmentAttribute("bounded_value"), [node], [], None, None
        ).set_lineno(node.lineno)

    def generic_visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        if isinstance(node, nodes.Extends | nodes.Include | nodes.Import | nodes.FromImport):
            raise TemplateSyntaxError(
                "a campaign template cannot include, import or extend other templates",
                node.lineno,
            )
        return super().generic_visit(node, *args, **kwargs)


class GuardedTemplate(Template):
    """A template whose every render gets a fresh work budget."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        token = _budget.set(Budget())
        try:
            return super().render(*args, **kwargs)
        finally:
            _budget.reset(token)


class CampaignSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+"})
    template_class = GuardedTemplate
    concat = staticmethod(_bounded_concat)

    def __init__(self, *, html: bool, strict: bool = False) -> None:
        super().__init__(
            autoescape=html,
            undefined=StrictUndefined if strict else ChainableUndefined,
            auto_reload=False,
            cache_size=0,
        )
        self.globals.clear()
        self.globals.update(
            range=bounded_range, dict=dict, cycler=Cycler, joiner=Joiner, namespace=Namespace
        )
        self.filters.update(BOUNDED_FILTERS)
        self.guarded_iteration = _guarded_iteration
        self.bounded_value = _bounded

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        # A plain dict instead of Jinja's ChainMap: the globals never change after
        # start-up, and merging a ChainMap into every render's context is slow.
        return {**self.globals, **(d or {})}

    def _generate(self, source: nodes.Template, *args: Any, **kwargs: Any) -> str:
        guarded = _Guard().visit(source)
        guarded.set_environment(self)
        return super()._generate(guarded, *args, **kwargs)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if _size(seq) and isinstance(times, int) and times > 1:
                    # What the repeated items hold counts, not only how many they are:
                    # `[x] * 2000` of a long `x` prints as gigabytes.
                    _refuse_if(_weight(seq, MAX_SIZE // times + 1) * times > MAX_SIZE, "repeating")
        elif operator == "+" and isinstance(left, list | tuple) and isinstance(right, list | tuple):
            _refuse_if(_weight(left) + _weight(right) > MAX_SIZE, "joining lists")
            if isinstance(left, int) and isinstance(right, int):
                _refuse_if(
                    left.bit_length() + right.bit_length() > MAX_INT_BITS, "multiplying numbers"
                )
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            _refuse_if(abs(right) * max(left.bit_length(), 1) > MAX_INT_BITS, "a power")
        elif operator == "%" and isinstance(left, str):
            _check_format(left, [right])
        return _bounded(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend()
        target = getattr(__obj, "__wrapped__", __obj)
        owner = getattr(target, "__self__", None)
        name = getattr(target, "__name__", "")
        if isinstance(owner, str):
            if name in _PADDING_METHODS:
                width = max([_as_int(a) for a in args] + [_as_int(v) for v in kwargs.values()])
                _refuse_if(width * (owner.count("\t") + 1) > MAX_SIZE, "padding")
            elif name in ("format", "format_map"):
                _check_format(owner, [*args, *kwargs.values()])
            elif name == "join" and args:
                items = list(args[0])
                _refuse_if(len(items) * len(owner) > MAX_SIZE, "joining")
                args = (items, *args[1:])
            elif name == "replace" and len(args) >= 2:
                old, new = str(args[0]), str(args[1])
                hits = len(owner) + 1 if old == "" else owner.count(old)
                _refuse_if(len(owner) + hits * len(new) > MAX_SIZE, "replacing")
        return _bounded(super().call(__context, __obj, *args, **kwargs))


_ENVIRONMENTS: dict[tuple[bool, bool], CampaignSandbox] = {}


def environment(*, html: bool, strict: bool = False) -> CampaignSandbox:
    """The shared sandbox for HTML (autoescaped) or text templates; `strict` makes
    undefined names errors (used when a template is checked at save time)."""
    key = (html, strict)
    if key not in _ENVIRONMENTS:
        _ENVIRONMENTS[key] = CampaignSandbox(html=html, strict=strict)
    return _ENVIRONMENTS[key]


def compile_template(source: str, *, html: bool, strict: bool = False) -> GuardedTemplate:
    """Compile `source`, or raise TemplateError naming the line of the problem."""
    if len(source) > MAX_SOURCE:
        raise TemplateError(f"a template is limited to {MAX_SOURCE:,} characters")
    try:
        template = environment(html=html, strict=strict).from_string(source)
    except TemplateSyntaxError as error:
        raise TemplateError(error.message or "syntax error", line=error.lineno) from None
    assert isinstance(template, GuardedTemplate)
    return template


# Everything a customer's template can raise while rendering: Jinja's own errors,
# and the Python errors of the operations it performs on plain data.
RENDER_ERRORS: tuple[type[BaseException], ...] = (
    JinjaError,
    TypeError,
    ValueError,
    ArithmeticError,
    LookupError,
    AttributeError,
    RecursionError,
)


def run(template: Template, context: dict[str, Any]) -> str:
    """Render `template`; any failure becomes a TemplateError with the template's line."""
    try:
        return template.render(context)
    except RENDER_ERRORS as error:
        raise TemplateError(
            _describe(error),
            line=_template_line(error),
            limit=isinstance(error, LimitExceeded | RecursionError),
        ) from None


def _describe(error: BaseException) -> str:
    if isinstance(error, LimitExceeded):
        return str(error)
    if isinstance(error, SecurityError):
        return "the template tries to reach something it may not"
    if isinstance(error, RecursionError):
        return "the template calls itself too deeply"
    if isinstance(error, ZeroDivisionError):
        return "division by zero"
    return str(error) or type(error).__name__


def _template_line(error: BaseException) -> int | None:
    """The line of the template being rendered when `error` was raised (Jinja rewrites
    tracebacks so that template frames carry the template's own line numbers)."""
    lineno = getattr(error, "lineno", None)
    if isinstance(lineno, int):
        return lineno
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename == "<template>":
            line = frame.lineno
    return line
