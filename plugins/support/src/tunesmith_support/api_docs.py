"""The API's ``/docs`` page: one self-contained HTML page written from the OpenAPI schema.

FastAPI's page loads Swagger UI's script and styles from a CDN, so it was blank offline and in
networks that block the CDN, and it told every visitor's browser about the server. This page has
no script and loads nothing (its Content-Security-Policy forbids it): each route with its request
fields, responses and a curl example, then each schema's fields.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

#: Sent with the page: nothing but its own inline styles may load or run.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
  color: #1b1b1b; }
h1 { margin-bottom: 0; } h2 { border-bottom: 1px solid #ccc; margin-top: 2.5rem; }
code, pre { font-family: ui-monospace, monospace; font-size: 13px; }
pre { background: #f4f4f4; padding: .6rem; overflow-x: auto; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
.method { font-weight: bold; padding: 0 .4rem; border-radius: 3px; color: #fff; background: #555; }
.post { background: #2a7a3b; } .get { background: #245c9e; }
.note { background: #fff7d6; padding: .5rem .8rem; border-left: 4px solid #e0b300; }
"""


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def type_text(schema: dict[str, Any]) -> str:
    """A field's type in a few words (``string or null``, ``array of Candidate``, ``one of
    "answer", "clarify"``, ``ErrorMessage with code one of "empty_question", ...``), links to
    the schema sections for references."""
    if "$ref" in schema:
        name = escape(_ref_name(schema["$ref"]))
        return f'<a href="#schema-{name}">{name}</a>'
    if "anyOf" in schema:
        return " or ".join(type_text(part) for part in schema["anyOf"])
    if "allOf" in schema:
        # An ErrorMessage whose code is one of a few (api_errors.error_response).
        text = " and ".join(type_text(part) for part in schema["allOf"])
        narrowed = ", ".join(
            f"<code>{escape(name)}</code> {type_text(field)}"
            for name, field in schema.get("properties", {}).items()
        )
        return f"{text} with {narrowed}" if narrowed else text
    if "enum" in schema:
        return "one of " + ", ".join(escape(json.dumps(value)) for value in schema["enum"])
    if "const" in schema:
        return escape(json.dumps(schema["const"]))
    kind = schema.get("type", "any")
    if kind == "array":
        return "array of " + type_text(schema.get("items", {}))
    return escape(str(kind))


def fields_table(schema: dict[str, Any]) -> str:
    """An object schema's fields: name, type, required, description."""
    properties = schema.get("properties", {})
    if not properties:
        return f"<p>{type_text(schema)}</p>"
    required = set(schema.get("required", []))
    rows = "".join(
        f"<tr><td><code>{escape(name)}</code></td><td>{type_text(field)}</td>"
        f"<td>{'yes' if name in required else 'no'}</td>"
        f"<td>{escape(field.get('description', ''))}</td></tr>"
        for name, field in properties.items()
    )
    return (
        "<table><tr><th>field</th><th>type</th><th>required</th><th>description</th></tr>"
        f"{rows}</table>"
    )


def _json_schema(content: dict[str, Any]) -> dict[str, Any] | None:
    return content.get("application/json", {}).get("schema")


def _example_body(schema: dict[str, Any], schemas: dict[str, Any]) -> str:
    """The request schema's first example, else its required fields with placeholder values."""
    if "$ref" in schema:
        schema = schemas.get(_ref_name(schema["$ref"]), {})
    if schema.get("examples"):
        return json.dumps(schema["examples"][0], ensure_ascii=False)
    samples = {"string": "...", "integer": 1, "boolean": True, "number": 1.0}
    body = {
        name: samples.get(schema["properties"].get(name, {}).get("type", "string"), "...")
        for name in schema.get("required", [])
    }
    return json.dumps(body, ensure_ascii=False)


def curl_example(path: str, method: str, body: str | None, token_required: bool) -> str:
    """A curl command line calling ``path`` on this server (``$API``: its address)."""
    parts = [f'curl -s "$API{path}"']
    if token_required:
        parts.append('-H "Authorization: Bearer $TOKEN"')
    if body is not None:
        parts += ["-H 'Content-Type: application/json'", f"-d '{body}'"]
    elif method != "get":
        parts.append(f"-X {method.upper()}")
    return " \\\n  ".join(parts)


def render_docs(
    schema: dict[str, Any], *, token_required: bool, address: str = "http://127.0.0.1:8000"
) -> str:
    """The ``/docs`` page for ``schema`` (the app's OpenAPI dict), as one HTML string;
    ``address``: the server's, as the page was asked for (its examples' ``$API``)."""
    info = schema.get("info", {})
    schemas = schema.get("components", {}).get("schemas", {})
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{escape(info.get('title', 'API'))}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(info.get('title', 'API'))}</h1>",
        f"<p>version {escape(str(info.get('version', '')))}. "
        f"{escape(info.get('description', ''))}</p>",
        "<p>The machine-readable schema is <a href='/openapi.json'>/openapi.json</a> (OpenAPI "
        f"{escape(str(schema.get('openapi', '')))}): load it in a client generator, Postman or "
        "Swagger UI of your own. Requests and responses are JSON; POST bodies must be sent "
        "with <code>Content-Type: application/json</code>. In the examples <code>$API</code> "
        f"is this server's address (<code>{escape(address)}</code>).</p>",
    ]
    if token_required:
        out.append(
            "<p class='note'>This server needs its token on every route but this page and the "
            "schema: send <code>Authorization: Bearer &lt;token&gt;</code> (a request without "
            "it, or with another token, is a 401).</p>"
        )
    out.append("<h2>Routes</h2>")
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            anchor = escape(operation.get("operationId", f"{method}-{path}"))
            out.append(
                f"<h3 id='{anchor}'><span class='method {escape(method)}'>{escape(method.upper())}"
                f"</span> <code>{escape(path)}</code></h3>"
            )
            if operation.get("description"):
                out.append(f"<p>{escape(operation['description'])}</p>")
            body = None
            request = _json_schema(operation.get("requestBody", {}).get("content", {}))
            if request is not None:
                out.append("<h4>Request body</h4>")
                target = schemas.get(_ref_name(request.get("$ref", "")), request)
                out.append(fields_table(target))
                body = _example_body(request, schemas)
            out.append("<h4>Responses</h4><table><tr><th>status</th><th>body</th><th></th></tr>")
            for status, response in sorted(operation.get("responses", {}).items()):
                returned = _json_schema(response.get("content", {}))
                out.append(
                    f"<tr><td>{escape(str(status))}</td>"
                    f"<td>{type_text(returned) if returned else ''}</td>"
                    f"<td>{escape(response.get('description', ''))}</td></tr>"
                )
            out.append("</table>")
            out.append(f"<pre>{escape(curl_example(path, method, body, token_required))}</pre>")
    out.append("<h2>Schemas</h2>")
    for name, component in schemas.items():
        out.append(f"<h3 id='schema-{escape(name)}'>{escape(name)}</h3>")
        if component.get("description"):
            out.append(f"<p>{escape(component['description'])}</p>")
        out.append(fields_table(component))
    out.append("</body></html>")
    return "\n".join(out)
