"""Parsing profiles users upload: ``s3://<data>/config/profiles/<name>/<version>.yaml`` (recon.keys).

A profile is data (recon.parsing.profiles.Profile): a user adds a bank layout we do not ship by uploading
one and naming it on the account (``Account.profile``), with no code change. Every version stays where it
was uploaded, so a statement can be read again with any of them (re-parse). Resolution of ``name`` or
``name@version``:

* a pinned version is that version: uploaded, else built in (the layer's own profile of that name);
* no version means the latest: the highest of the uploaded and the built-in versions, in the natural order
  of ``recon.parsing.profiles.version_key`` (``2`` < ``10``, ``1.2`` < ``1.10``).

An uploaded file must validate and must declare the name and version its key gives; otherwise it is
refused with a ``ProfileError`` naming the key and every problem. ``extends`` may name an uploaded or a
built-in profile (its latest version). The same version may not exist both uploaded and built in with
different rules: a version identifies one set of rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import yaml
from pydantic import ValidationError

from recon.keys import parse_profile_key, profile_key, profile_prefix
from recon.parsing.profiles import Profile, builtin_profiles, version_key
from recon.ports import ObjectStore

_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
_MAX_EXTENDS = 8  # profiles extending profiles: deeper is a mistake (or a cycle)


class ProfileError(Exception):
    """A profile cannot be used: it does not exist, does not validate, or contradicts its key."""

    def __init__(self, name: str, version: str | None, reason: str, *, key: str | None = None) -> None:
        self.name = name
        self.version = version
        self.key = key
        self.reason = reason
        where = f" ({key})" if key else ""
        super().__init__(f"profile {name}@{version or 'latest'}{where}: {reason}")


@dataclass(frozen=True)
class ProfileSpec:
    """``name`` or ``name@version`` as an account (``Account.profile``) or a command names a profile."""

    name: str
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> ProfileSpec:
        name, _, version = text.strip().partition("@")
        for part, what in ((name, "name"), (version, "version")):
            if (part or what == "name") and not _PART.match(part):
                raise ProfileError(
                    name or text, version or None, f"invalid profile {what} {part!r} (letters, digits, . _ -)"
                )
        return cls(name, version or None)

    def __str__(self) -> str:
        return f"{self.name}@{self.version}" if self.version else self.name


def uploaded_versions(store: ObjectStore, bucket: str, name: str) -> list[str]:
    """Versions of ``name`` uploaded to the data bucket, oldest first."""
    found = [parse_profile_key(o.key) for o in store.list(bucket, profile_prefix(name))]
    return sorted((v for n, v in filter(None, found) if n == name), key=version_key)


def problems(exc: Exception) -> str:
    """Every problem of a rejected profile, one after the other, naming where it is."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())) or '(top level)'}: {e.get('msg', '')}"
            for e in exc.errors()
        )
    return str(exc).strip() or type(exc).__name__


def profile_from_text(
    text: str,
    *,
    name: str,
    version: str | None,
    where: str,
    parent: Callable[[str], Profile] | None = None,
) -> Profile:
    """Validate one profile document (YAML; JSON is YAML). ``where`` names it in errors; ``parent`` resolves
    a name given in ``extends`` to a Profile (default: the built-in profiles)."""
    try:
        doc = yaml.safe_load(text)
        if not isinstance(doc, dict):
            raise ValueError("a profile document is a mapping of keys (name, version, fields, ...)")
        known = None
        extends = doc.get("extends")
        if extends and parent is not None:
            known = {str(extends): parent(str(extends))}
        return Profile.from_data(doc, known=known)
    except ProfileError as exc:
        raise ProfileError(name, version, f"extends {exc}", key=where) from exc
    except (ValidationError, ValueError, TypeError, yaml.YAMLError) as exc:
        raise ProfileError(name, version, f"invalid profile: {problems(exc)}", key=where) from exc


class ProfileStore:
    """Profiles as the parse stage sees them: uploaded ones in the data bucket, then the built-in ones."""

    def __init__(self, store: ObjectStore, bucket: str) -> None:
        self._store = store
        self._bucket = bucket

    def versions(self, name: str) -> tuple[list[str], list[str]]:
        """(uploaded, built-in) versions of ``name``, each oldest first."""
        return uploaded_versions(self._store, self._bucket, name), builtin_profiles().versions(name)

    def load_uploaded(self, name: str, version: str, *, depth: int = 0) -> Profile:
        """One uploaded version, validated against its key."""
        key = profile_key(name, version)
        try:
            text = self._store.get(self._bucket, key).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProfileError(name, version, f"not UTF-8 text: {exc}", key=key) from exc

        def parent(parent_name: str) -> Profile:
            if depth >= _MAX_EXTENDS or parent_name == name:
                raise ProfileError(parent_name, None, "profiles extend each other in a cycle (or too deeply)")
            return self.resolve(ProfileSpec(parent_name), depth=depth + 1)

        profile = profile_from_text(text, name=name, version=version, where=key, parent=parent)
        if (profile.name, profile.version) != (name, version):
            raise ProfileError(
                name,
                version,
                f"the file declares {profile.name}@{profile.version}, its key says {name}@{version}",
                key=key,
            )
        return profile

    def resolve(self, spec: ProfileSpec, *, depth: int = 0) -> Profile:
        """The profile ``spec`` names (see the module docstring); raises ``ProfileError``."""
        uploaded, shipped = self.versions(spec.name)
        candidates = sorted({*uploaded, *shipped}, key=version_key)
        if not candidates:
            raise ProfileError(
                spec.name,
                spec.version,
                f"no such profile: nothing under {profile_prefix(spec.name)} and none built in",
            )
        version = spec.version or candidates[-1]
        if version not in candidates:
            raise ProfileError(
                spec.name, spec.version, f"no version {version!r}; there are: {', '.join(candidates)}"
            )
        if version not in uploaded:
            return builtin_profiles().get(spec.name, version)
        profile = self.load_uploaded(spec.name, version, depth=depth)
        if version in shipped and builtin_profiles().get(spec.name, version) != profile:
            raise ProfileError(
                spec.name,
                version,
                "the upload reuses a built-in version number with different rules; upload it as a new version",
                key=profile_key(spec.name, version),
            )
        return profile


__all__ = [
    "ProfileError",
    "ProfileSpec",
    "ProfileStore",
    "problems",
    "profile_from_text",
    "uploaded_versions",
]
