"""The LINKCAST_* variables linkcast's settings classes read, for the deploy file tests."""

import ast
from pathlib import Path

from pydantic_settings import BaseSettings

import api.settings
import streams.settings

REPO = Path(__file__).resolve().parents[3]
PACKAGES = ("streams", "producers", "models", "api", "deploy")
SETTINGS_MODULES = (streams.settings, api.settings)


def settings_classes() -> set[type[BaseSettings]]:
    """Every BaseSettings subclass defined in the settings modules (and their subclasses)."""
    found: set[type[BaseSettings]] = set()
    todo = list(BaseSettings.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] in PACKAGES:
            found.add(cls)
    return found


def settings_class_names_in_source() -> set[str]:
    """Names of the classes in linkcast's source whose bases name a *Settings class."""
    names = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ClassDef) and any(
                    (isinstance(b, ast.Name) and b.id.endswith("Settings"))
                    or (isinstance(b, ast.Attribute) and b.attr.endswith("Settings"))
                    for b in node.bases
                ):
                    names.add(node.name)
    return names


def known_variables() -> set[str]:
    """LINKCAST_<FIELD> for every field of every settings class (env_prefix + field name)."""
    variables = set()
    for cls in settings_classes():
        prefix = cls.model_config.get("env_prefix", "")
        assert prefix == "LINKCAST_", f"{cls.__name__} reads variables without LINKCAST_"
        for name, field in cls.model_fields.items():
            assert field.validation_alias is None, f"{cls.__name__}.{name} has an alias"
            variables.add(f"{prefix}{name}".upper())
    return variables
