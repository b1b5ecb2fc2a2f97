"""The promises Tidings keeps, and which tests prove each one.

The ids follow the promise list the project was specified from; the titles are short
summaries. A test proves a promise by carrying `@pytest.mark.promise("P13")` (on the
function, its class, or the module's `pytestmark`).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

PROMISES: dict[str, str] = {
    "P1": "Registration asks only for name and email; address and phone only where needed",
    "P2": "Every point of collection records what, when, why and on which legal basis",
    "P3": "Support requests are answered by staff from a support desk",
    "P4": "Orders are processed and produce invoices",
    "P5": "Product-update emails go only to customers who have not opted out",
    "P6": "Staff follow up on a conversation with its history at hand",
    "P7": "Personal data only for staff whose role grants it; every access audited",
    "P8": "Encryption in transit and of sensitive fields at rest, with key rotation",
    "P9": "Strong password hashing, rate limits, lockout, CSRF, 2FA for staff",
    "P10": "Card numbers never touch Tidings",
    "P11": "The data location is configuration, shown in the policy",
    "P12": "Data is kept while the commercial relation lasts",
    "P13": "Closing schedules erasure: grace period, complete by day 60, erase-now option",
    "P14": "Invoices and their billing identity kept for the legal period, nothing else",
    "P15": "Access: My Account shows all personal data held",
    "P16": "Rectification: My Account changes it",
    "P17": "Erasure: closing the account erases it",
    "P18": "Restriction: each optional processing can be switched off",
    "P19": "Notification: an email on every change or deletion of personal data",
    "P20": "Portability: all data exported as CSV, XLSX and XLS",
    "P21": "Objection: closing stops all processing; marketing objection in one click",
    "P22": "Non-essential cookies only after consent, per category, with proof",
    "P23": "With every non-essential cookie refused, everything works the same",
    "P24": "No new third party without advance notice; sub-processors listed",
    "P25": "Disclosures to authorities are recorded",
    "P26": "Only aggregate, non-identifying visitor figures are shared",
    "P27": "Third-party services listed with purpose and opt-out; tags only with consent",
    "P28": "Do Not Track and Global Privacy Control honoured on the server",
    "P29": "Public pages visitable anonymously, without tracking",
    "P30": "The home page links to the policy with a link containing 'Privacy'",
    "P31": "Policy changes announced: every version kept, dated, with what changed",
    "P32": "Changes by writing to support are made in the desk, audited and notified",
    "P33": "Breaches recorded, people and authority told within 72 hours",
    "P34": "A way to complain: supervisory authority and privacy contact",
}


def _promise_ids(decorators: Iterable[ast.expr]) -> set[str]:
    found: set[str] = set()
    for node in decorators:
        for call in ast.walk(node):
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "promise"
            ):
                found |= {
                    a.value
                    for a in call.args
                    if isinstance(a, ast.Constant) and isinstance(a.value, str)
                }
    return found


def _module_marks(tree: ast.Module) -> set[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            return _promise_ids([node.value])
    return set()


def proofs_by_promise(tests_dir: Path) -> dict[str, list[str]]:
    """Map each promise id to the test node ids that carry its marker."""
    proven: dict[str, list[str]] = defaultdict(list)
    for path in sorted(tests_dir.rglob("test_*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        module_ids = _module_marks(tree)
        rel = path.relative_to(tests_dir.parent).as_posix()
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                class_ids = module_ids | _promise_ids(node.decorator_list)
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name.startswith("test"):
                        for pid in class_ids | _promise_ids(item.decorator_list):
                            proven[pid].append(f"{rel}::{node.name}::{item.name}")
            elif isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
                for pid in module_ids | _promise_ids(node.decorator_list):
                    proven[pid].append(f"{rel}::{node.name}")
    return proven


def report(tests_dir: Path, *, markdown: bool = False) -> str:
    proven = proofs_by_promise(tests_dir)
    unknown = sorted(set(proven) - set(PROMISES))
    lines = []
    if markdown:
        lines += [
            "# Promise matrix",
            "",
            "Each promise of the privacy policy and the tests that prove it. Generated by",
            "`tidings promises --markdown > docs/promises.md`; a test fails when it is stale.",
            "",
            "| promise | what | tests |",
            "| --- | --- | --- |",
        ]
    for pid, title in PROMISES.items():
        tests = proven.get(pid, [])
        if markdown:
            cell = "<br>".join(f"`{t}`" for t in tests) if tests else "**no test yet**"
            lines.append(f"| {pid} | {title} | {cell} |")
        else:
            lines.append(f"{pid:<4} {title}")
            lines += [f"       {t}" for t in tests] or ["       NO TEST: not yet proven"]
    if unknown:
        lines.append(f"unknown promise ids in tests: {', '.join(unknown)}")
    count = sum(1 for pid in PROMISES if proven.get(pid))
    lines.append("")
    lines.append(f"proven: {count}/{len(PROMISES)}")
    return "\n".join(lines)
