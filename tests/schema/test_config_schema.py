"""config/config.schema.json against the configs we ship and test with.

Every valid test config and every config/*.yaml must validate; invalid test
configs whose mistake a schema can express must not. The schema itself is
generated from src/config/config_schema.c (unit.config fails when it is stale), so
this checks that what the generator writes agrees with what the C loader
accepts, for editors and CI tools that validate with the schema alone.
"""
import glob
import json
import os
import re
import unittest

import jsonschema
import yaml

ROOT = os.environ.get("EB_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))


class Yaml12Loader(yaml.SafeLoader):
    """PyYAML speaks YAML 1.1 (`off` is false, `yes` is true); the bridge's
    loader reads booleans the YAML 1.2 way (true/false only) and `ledger:
    off` is the string "off"."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"))

# Invalid test configs whose mistake is visible to a JSON Schema (the rest --
# ties, duplicate names, templates, env variables, YAML syntax -- need the
# bridge's own loader).
SCHEMA_VISIBLE = [
    "bool_wrong_value", "duplicate_database", "duration_without_unit", "empty_events",
    "listen_without_port", "missing_topic", "missing_url", "reserved_header",
    "route_name_invalid", "route_not_mapping", "routes_wrong_type", "scalar_wrong_type",
    "section_wrong_type", "size_without_unit", "topic_dotdot", "topic_too_long",
    "topic_with_space", "unknown_event_suggests", "unknown_format", "unknown_key_suggests_nearest",
    "unknown_key_without_suggestion", "unknown_ledger", "unknown_top_level_key",
    "unrouted_invalid",
]


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=Yaml12Loader)


class ConfigSchemaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(ROOT, "config", "config.schema.json"), encoding="utf-8") as f:
            cls.schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(cls.schema)
        cls.validator = jsonschema.Draft202012Validator(cls.schema)

    def test_valid_configs_validate(self):
        paths = sorted(glob.glob(os.path.join(ROOT, "tests/data/configs/valid/*.yaml")) +
                       glob.glob(os.path.join(ROOT, "config/*.yaml")))
        self.assertGreaterEqual(len(paths), 8)
        for path in paths:
            with self.subTest(path=os.path.relpath(path, ROOT)):
                errors = [e.message for e in self.validator.iter_errors(load(path))]
                self.assertEqual(errors, [])

    def test_schema_visible_mistakes_are_rejected(self):
        for name in SCHEMA_VISIBLE:
            path = os.path.join(ROOT, "tests/data/configs/invalid", name + ".yaml")
            with self.subTest(config=name):
                self.assertFalse(self.validator.is_valid(load(path)),
                                 "the schema accepts " + name + ".yaml")


if __name__ == "__main__":
    unittest.main()
