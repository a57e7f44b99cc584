"""Reference pages generated from the code, so that nothing is written twice (the directives emit
MyST Markdown, the language of the pages that use them):

- ``settings-table``: every setting of :class:`skao_staging.config.Settings` (environment name, default, meaning);
- ``error-codes``: the error catalogue :data:`skao_staging.errors.CODES`;
- ``http-api``: every endpoint of the FastAPI application, from its OpenAPI schema.
"""

from __future__ import annotations

import json
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles


def _cell(text: object) -> str:
    return str(text).replace("\n", " ")


class GeneratedMarkdown(SphinxDirective):
    """A directive that renders the Markdown made by ``lines()``."""

    def lines(self) -> list[str]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        container = nodes.section() if self.name == "http-api" else nodes.container()
        content = StringList(self.lines(), source=f"<{self.name}>")
        nested_parse_with_titles(self.state, content, container)
        return list(container.children)


def _list_table(header: list[str], rows: list[list[str]], widths: str) -> list[str]:
    lines = ["```{list-table}", ":header-rows: 1", f":widths: {widths}", ""]
    for row in [header, *rows]:
        lines.append(f"* - {row[0]}")
        lines.extend(f"  - {cell}" for cell in row[1:])
    return [*lines, "```", ""]


def _default_of(field: Any) -> str:
    from pydantic_core import PydanticUndefined

    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return ", ".join(f"`{item}`" for item in value) if value else "empty"
    if isinstance(value, dict):
        return "`" + json.dumps(value) + "`" if value else "empty"
    return f"`{value}`"


class SettingsTable(GeneratedMarkdown):
    """A definition list (a table of three columns is too wide for the long names and defaults)."""

    def lines(self) -> list[str]:
        from skao_staging.config import Settings

        prefix = Settings.model_config.get("env_prefix", "")
        out: list[str] = []
        for name, field in Settings.model_fields.items():
            out += [
                f"`{(prefix + name).upper()}` (default: {_default_of(field)})",
                f": {_cell(field.description or '')}",
                "",
            ]
        return out


class ErrorCodes(GeneratedMarkdown):
    def lines(self) -> list[str]:
        from skao_staging.errors import CODES

        rows = [
            [f"`{code}`", str(entry.status), "yes" if entry.retryable else "no", _cell(entry.meaning)]
            for code, entry in CODES.items()
        ]
        return _list_table(["Code", "HTTP status", "Retried by workers", "Meaning"], rows, "25 10 12 53")


class HttpApi(GeneratedMarkdown):
    def lines(self) -> list[str]:
        from skao_staging.api.app import create_app
        from skao_staging.config import Settings

        schema = create_app(Settings()).openapi()
        out: list[str] = []
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                out += self.operation(path, method.upper(), operation)
        return out

    def operation(self, path: str, method: str, operation: dict[str, Any]) -> list[str]:
        out = [f"## `{method} {path}`", ""]
        if operation.get("summary"):
            out += [f"**{_cell(operation['summary'])}**", ""]
        if operation.get("description"):
            out += [*operation["description"].splitlines(), ""]
        parameters = operation.get("parameters", [])
        if parameters:
            rows = [
                [f"`{p['name']}`", p["in"], "yes" if p.get("required") else "no", _cell(p.get("description", ""))]
                for p in parameters
            ]
            out += _list_table(["Parameter", "In", "Required", "Meaning"], rows, "20 10 10 60")
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if body:
            out += [f"Body: `{body.get('$ref', body.get('type', 'object')).split('/')[-1]}` (JSON)", ""]
        responses = ", ".join(f"`{code}`" for code in operation.get("responses", {}))
        out += [f"Answers: {responses}", ""]
        return out


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("settings-table", SettingsTable)
    app.add_directive("error-codes", ErrorCodes)
    app.add_directive("http-api", HttpApi)
    return {"version": "1", "parallel_read_safe": True}
