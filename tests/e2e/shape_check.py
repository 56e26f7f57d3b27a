"""Checks every response a boto3 client gets against the botocore model of its operation.

botocore's parser is lenient: it drops members it does not know, accepts timestamps as strings
and turns `null` into "absent". Real clients in other languages are less forgiving, so the e2e
suite checks both the parsed response (types, required members, lengths, with botocore's own
ParamValidator) and the raw JSON body (no unknown members, no nulls, JSON types as the model says).

`make_client()` returns a boto3 client with the check installed on its `after-call` event; a
response with a problem raises `ShapeError` from the API call itself, so the test fails there.
"""

import json
import re
import xml.etree.ElementTree as ET

import boto3
from botocore.config import Config
from botocore.validate import ParamValidator

# Errors any AWS JSON service may answer with, although no operation lists them in the model.
COMMON_ERRORS = {
    "AccessDeniedException",
    "ExpiredTokenException",
    "IncompleteSignature",
    "IncompleteSignatureException",
    "InternalFailure",
    "InvalidAction",
    "InvalidClientTokenId",
    "InvalidParameterCombination",
    "InvalidParameterValue",
    "InvalidQueryParameter",
    "InvalidSignatureException",
    "MalformedQueryString",
    "MissingAction",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "MissingParameter",
    "NotAuthorized",
    "RequestExpired",
    "SerializationException",
    "ServiceUnavailable",
    "ThrottlingException",
    "UnknownOperationException",
    "UnrecognizedClientException",
    "ValidationError",
    "ValidationException",
}

JSON_PROTOCOLS = {"json", "rest-json"}
QUERY_PROTOCOLS = {"query", "ec2"}
ISO8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


class ShapeError(AssertionError):
    """A response that does not match the botocore model."""


def protocol_of(service_model):
    # Newer botocore picks one of several protocols a service offers (e.g. CloudWatch).
    return getattr(service_model, "resolved_protocol", None) or service_model.protocol


def response_problems(operation_model, status, headers, body, parsed):
    """Everything wrong with one response, as a list of readable strings (empty when it is fine)."""
    service_model = operation_model.service_model
    is_json = protocol_of(service_model) in JSON_PROTOCOLS
    is_query = protocol_of(service_model) in QUERY_PROTOCOLS
    problems = []

    if (is_json or is_query) and not _header(headers, "x-amzn-RequestId"):
        problems.append("missing header x-amzn-RequestId")

    if status >= 300:
        if is_json:
            problems += _error_problems(operation_model, body)
        if is_query:
            problems += _xml_error_problems(operation_model, body)
        return problems

    shape = operation_model.output_shape
    result = {k: v for k, v in (parsed or {}).items() if k != "ResponseMetadata"}
    if shape is None:
        if result:
            problems.append(f"operation has no output, got members {sorted(result)}")
    else:
        report = ParamValidator().validate(result, shape)
        if report.has_errors():
            problems.append(report.generate_report())

    if is_json:
        try:
            raw = json.loads(body) if body and body.strip() else {}
        except ValueError as e:
            return problems + [f"body is not JSON: {e}: {body[:200]!r}"]
        if shape is None:
            if raw != {}:
                problems.append(f"operation has no output, body is {body[:200]!r}")
        else:
            problems += raw_json_problems(raw, shape)
    if is_query:
        problems += _xml_body_problems(operation_model, body)
    return problems


def _local(tag):
    return tag.split("}", 1)[-1]


def _xml_body_problems(operation_model, body):
    """A Query answer: `<{Op}Response xmlns=..><{Op}Result>..</{Op}Result><ResponseMetadata>` whose result
    elements are exactly the output shape's, with scalars written as the protocol writes them. EC2:
    `<{Op}Response xmlns=..><requestId>..</requestId>` and the output's elements."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        return [f"body is not XML: {e}: {body[:200]!r}"]
    name = operation_model.name
    problems = []
    if _local(root.tag) != f"{name}Response":
        problems.append(f"root element is {_local(root.tag)!r}, expected {name}Response")
    ns = operation_model.service_model.metadata.get("xmlNamespace")
    # EC2's model names its namespace without the trailing slash its answers carry.
    if ns and not (root.tag.startswith("{" + ns + "}") or root.tag.startswith("{" + ns + "/}")):
        problems.append(f"root element is not in the namespace {ns}")
    if protocol_of(operation_model.service_model) == "ec2":
        return problems + _ec2_body_problems(operation_model, root)
    children = {_local(c.tag): c for c in root}
    if "ResponseMetadata" not in children or children["ResponseMetadata"].find("./*") is None:
        problems.append("no ResponseMetadata/RequestId")
    shape = operation_model.output_shape
    result = children.get(f"{name}Result")
    if shape is None:
        if result is not None and len(result):
            problems.append(f"operation has no output, got a {name}Result with elements")
        return problems
    if result is None:
        return problems + [f"no {name}Result element"]
    return problems + raw_xml_problems(result, shape, f"{name}Result")


def _ec2_body_problems(operation_model, root):
    first = next(iter(root), None)
    if first is None or _local(first.tag) != "requestId" or not (first.text or "").strip():
        return ["EC2 answer does not open with its requestId"]
    shape = operation_model.output_shape
    rest = [c for c in root if _local(c.tag) != "requestId"]
    if shape is None:
        return [f"operation has no output, got elements {[_local(c.tag) for c in rest]}"] if rest else []
    holder = ET.Element("result")
    holder.extend(rest)
    return raw_xml_problems(holder, shape, operation_model.name)


def raw_xml_problems(element, shape, path):
    """Walks an XML element against a shape: unknown elements and badly written scalars."""
    kind = shape.type_name
    if kind == "structure":
        wire_names = {m.serialization.get("name", n): m for n, m in shape.members.items()}
        problems = []
        for child in element:
            key = _local(child.tag)
            member = wire_names.get(key)
            if member is None:
                problems.append(f"{path}: element {key!r} is unknown to {shape.name}")
            else:
                problems += raw_xml_problems(child, member, f"{path}.{key}")
        return problems
    if kind == "list":
        item = shape.member.serialization.get("name", "member")
        problems = []
        for i, child in enumerate(element):
            if _local(child.tag) != item:
                problems.append(f"{path}[{i}]: list item element is {_local(child.tag)!r}, expected {item!r}")
            else:
                problems += raw_xml_problems(child, shape.member, f"{path}[{i}]")
        return problems
    if kind == "map":
        return []
    if len(element):
        return [f"{path}: expected text for {kind}, got elements"]
    text = element.text or ""
    ok = {
        "boolean": text in ("true", "false"),
        "integer": re.fullmatch(r"-?\d+", text) is not None,
        "long": re.fullmatch(r"-?\d+", text) is not None,
        "timestamp": ISO8601.match(text) is not None,
    }.get(kind, True)
    return [] if ok else [f"{path}: {text!r} is not a {kind} as the Query protocol writes it"]


def _xml_error_problems(operation_model, body):
    """A Query error: `<ErrorResponse><Error><Type>Sender|Receiver</Type><Code>known</Code><Message>`. EC2:
    `<Response><Errors><Error><Code>..</Code><Message>..</Message></Error></Errors><RequestID>` (EC2's model
    lists no error codes)."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        return [f"error body is not XML: {e}: {body[:200]!r}"]
    if protocol_of(operation_model.service_model) == "ec2":
        error = root.find("./Errors/Error")
        if _local(root.tag) != "Response" or error is None:
            return [f"EC2 error is not <Response><Errors><Error>: {body[:200]!r}"]
        fields = {_local(c.tag): (c.text or "") for c in error}
        problems = [f"EC2 error has no {f}" for f in ("Code", "Message") if not fields.get(f)]
        if root.find("./RequestID") is None:
            problems.append("EC2 error has no RequestID")
        return problems
    if _local(root.tag) != "ErrorResponse":
        return [f"error root element is {_local(root.tag)!r}, expected ErrorResponse"]
    error = next((c for c in root if _local(c.tag) == "Error"), None)
    if error is None:
        return ["ErrorResponse has no Error"]
    fields = {_local(c.tag): (c.text or "") for c in error}
    problems = []
    if fields.get("Type") not in ("Sender", "Receiver"):
        problems.append(f"error Type is {fields.get('Type')!r}")
    known = {s.metadata.get("error", {}).get("code", s.name) for s in operation_model.service_model.error_shapes}
    if fields.get("Code") not in known | COMMON_ERRORS:
        problems.append(f"error Code {fields.get('Code')!r} is not an error of {operation_model.service_model.service_name}")
    if not fields.get("Message"):
        problems.append("error has no Message")
    if not any(_local(c.tag) == "RequestId" for c in root):
        problems.append("ErrorResponse has no RequestId")
    return problems


def raw_json_problems(value, shape, path="$"):
    """Walks a raw JSON value against a shape: unknown members, nulls and wrong JSON types."""
    if value is None:
        return [f"{path}: null (AWS omits absent members instead)"]
    kind = shape.type_name
    if shape.metadata.get("document"):
        return []  # free-form JSON
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected an object for {shape.name}, got {_json_type(value)}"]
        wire_names = {m.serialization.get("name", name): m for name, m in shape.members.items()}
        problems = []
        for key, item in value.items():
            member = wire_names.get(key)
            if member is None:
                problems.append(f"{path}: member {key!r} is unknown to {shape.name}")
            else:
                problems += raw_json_problems(item, member, f"{path}.{key}")
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {_json_type(value)}"]
        return [p for i, item in enumerate(value) for p in raw_json_problems(item, shape.member, f"{path}[{i}]")]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected an object (map), got {_json_type(value)}"]
        return [p for k, item in value.items() for p in raw_json_problems(item, shape.value, f"{path}[{k!r}]")]

    # Scalars. bool is a subclass of int in Python, hence the explicit checks.
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = {
        "string": isinstance(value, str),
        "blob": isinstance(value, str),  # base64
        "boolean": isinstance(value, bool),
        "integer": number and isinstance(value, int),
        "long": number and isinstance(value, int),
        "float": number,
        "double": number,
        # DESIGN: timestamps are epoch seconds in JSON (botocore would also accept strings).
        "timestamp": number,
    }.get(kind, True)
    if not ok:
        return [f"{path}: expected {kind}, got {_json_type(value)} {value!r}"]
    return []


def _error_problems(operation_model, body):
    """A JSON error must be `{"__type": "<known error>", "message": "..."}`."""
    try:
        raw = json.loads(body)
    except ValueError:
        return [f"error body is not JSON: {body[:200]!r}"]
    if not isinstance(raw, dict) or not isinstance(raw.get("__type"), str):
        return [f"error body has no __type: {body[:200]!r}"]
    problems = []
    # `__type` may be namespaced: `com.amazonaws.ecs#ClusterNotFoundException` or `X:http://...`.
    code = raw["__type"].split("#")[-1].split(":")[0]
    known = {s.name for s in operation_model.service_model.error_shapes}
    known |= {s.metadata.get("error", {}).get("code", s.name) for s in operation_model.service_model.error_shapes}
    if code not in known | COMMON_ERRORS:
        problems.append(f"error __type {code!r} is not an error of {operation_model.service_model.service_name}")
    message = raw.get("message", raw.get("Message"))
    if not isinstance(message, str):
        problems.append(f"error body has no message: {body[:200]!r}")
    return problems


def install(client):
    """Makes every response of `client` go through `response_problems`; a problem raises ShapeError."""

    def check(http_response, parsed, model, **_):
        problems = response_problems(
            model, http_response.status_code, http_response.headers, http_response.content, parsed
        )
        if problems:
            service = model.service_model.service_name
            raise ShapeError(
                f"{service}.{model.name} response does not match the model:\n  "
                + "\n  ".join(problems)
                + f"\nbody: {http_response.content[:2000]!r}"
            )

    client.meta.events.register("after-call", check)
    return client


_session = None


def make_client(service, endpoint, region="us-east-1"):
    """A boto3 client for Gantry with the shape check installed and retries off (a server fault
    should fail the test, not be retried away)."""
    global _session
    if _session is None:
        # One botocore session: the service models are loaded once.
        _session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=region)
    client = _session.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=60),
    )
    return install(client)


def _header(headers, name):
    return {k.lower(): v for k, v in dict(headers).items()}.get(name.lower())


def _json_type(value):
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )
