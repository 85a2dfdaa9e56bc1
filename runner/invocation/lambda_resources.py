"""The Runner's aliases, layers and execution roles (issue 20), kept out of runner.py.

`AliasesAndLayers` is mixed into Runner: it uses the Runner's stores (`registry`, `aliases`,
`layers`, `roles`, `pool`) and its `_route_rng`. Aliases with weighted routing are resolved here, per
invocation (Lambda's RoutingConfig): `resolve_for_invoke` is on the invoke path, and costs a
dictionary read for a qualifier that is not an alias with weights.
"""

from __future__ import annotations

from typing import Any

from runner.errors import InvalidParameter
from runner.model import LATEST, MAX_LAYERS, FunctionVersion, normalize_runtime
from runner.storage.aliases import Alias
from runner.storage.layers import LayerVersion, parse_arn
from runner.storage.roles import Role


def pick_version(alias: Alias, draw: float) -> str:
    """The version an invocation through `alias` runs, for a uniform `draw` in [0, 1): each
    additional version takes its weight's share, the alias's own version the rest."""
    acc = 0.0
    for version, weight in sorted(alias.weights.items()):
        acc += weight
        if draw < acc:
            return version
    return alias.version


class AliasesAndLayers:
    registry: Any
    aliases: Any
    layers: Any
    roles: Any
    pool: Any
    _route_rng: Any

    def _derived(self, config) -> dict:
        """The FunctionVersion fields the registry derives from a configuration: the merged
        layers' directory, the role's variables and generation (storage/functions.py)."""
        out: dict[str, Any] = {}
        if config.layers:
            out["opt_dir"] = self.layers.opt_dir(config.layers)
        role = self.roles.find(config.role) if config.role else None
        if role is not None:
            out["role_env"] = role.environment()
            out["role_generation"] = role.generation
        return out

    # ------------------------------------------------------------------ aliases

    def resolve_for_invoke(self, name: str, qualifier: str | None) -> FunctionVersion:
        """The version one invocation of `name:qualifier` runs: an alias with weighted routing
        picks its version here, per invocation; anything else is the registry's resolve."""
        if qualifier and qualifier != LATEST and not qualifier[0].isdigit():
            alias = self.aliases.get_cached(name, qualifier)
            if alias is not None and alias.weights:
                return self.registry.resolve(name, pick_version(alias, self._route_rng.random()))
        return self.registry.resolve(name, qualifier)

    def create_alias(self, name: str, alias: str, version: str, *,
                     weights: dict[str, float] | None = None, description: str = "") -> Alias:
        """A new alias of `name` to a published version, optionally routing a share of the
        invocations to another one (`weights`: {"2": 0.1})."""
        return self.aliases.create(name, alias, str(version), weights, description)

    def get_alias(self, name: str, alias: str) -> Alias:
        self.registry.resolve(name)
        return self.aliases.get(name, alias)

    def list_aliases(self, name: str, version: str | None = None) -> list[Alias]:
        return self.aliases.list(name, version)

    def update_alias(self, name: str, alias: str, **changes: Any) -> Alias:
        """Changes: version, weights ({} removes routing), description, revision_id."""
        self.registry.resolve(name)
        return self.aliases.update(name, alias, **changes)

    def delete_alias(self, name: str, alias: str) -> None:
        self.registry.resolve(name)
        self.aliases.delete(name, alias)

    # ------------------------------------------------------------------ layers

    def publish_layer(self, name: str, content: bytes, *, description: str = "",
                      compatible_runtimes: tuple[str, ...] = (), license: str = "") -> LayerVersion:
        for rt in compatible_runtimes:
            normalize_runtime(rt)  # InvalidParameter names an unknown one
        return self.layers.publish(name, content, description=description,
                                   compatible_runtimes=tuple(compatible_runtimes),
                                   license=license)

    def get_layer(self, name: str, version: int) -> LayerVersion:
        return self.layers.get(name, version)

    def list_layers(self) -> list[LayerVersion]:
        return self.layers.list_layers()

    def list_layer_versions(self, name: str) -> list[LayerVersion]:
        return self.layers.list_versions(name)

    def delete_layer_version(self, name: str, version: int) -> None:
        self.layers.delete(name, version)

    def check_layers(self, arns: list[str]) -> tuple[str, ...]:
        """The layer ARNs a configuration may name: at most five, each a live version, no name
        twice (Lambda's rules). InvalidParameter / ResourceNotFound otherwise."""
        if len(arns) > MAX_LAYERS:
            raise InvalidParameter("Layers", f"{len(arns)} layers; a function may use at most "
                                   f"{MAX_LAYERS}")
        names = set()
        for arn in arns:
            name, version = parse_arn(arn)
            if name in names:
                raise InvalidParameter("Layers", f"layer {name} is named twice; keep one version")
            names.add(name)
            self.layers.get(name, version)
        return tuple(arns)

    def layer_paths(self, version: FunctionVersion) -> list[str]:
        """The extracted content of the version's layers, in mount order (deleted layer
        versions included: a function keeps what it was configured with)."""
        return [self.layers.get_any(*parse_arn(arn)).path for arn in version.config.layers]

    # ------------------------------------------------------------------ execution roles

    def create_role(self, name: str, access_key_id: str, secret_access_key: str,
                    **extra: str) -> Role:
        """Register a role (extra: session_token, endpoint_url, s3_endpoint_url). Functions
        already configured with its name get it from their next new environment."""
        role = self.roles.create(name, access_key_id, secret_access_key, **extra)
        self._roles_changed()
        return role

    def update_role(self, name: str, **changes: str) -> Role:
        """Rotate or change a role: every environment started from now on gets the new
        values; idle ones holding the old are retired (in-flight invocations finish)."""
        role = self.roles.update(name, **changes)
        self._roles_changed()
        return role

    def get_role(self, name: str) -> Role:
        return self.roles.get(name)

    def list_roles(self) -> list[Role]:
        return self.roles.list()

    def delete_role(self, name: str) -> Role:
        role = self.roles.delete(name)
        self._roles_changed()
        return role

    def _roles_changed(self) -> None:
        """Versions derive their role's variables when resolved: resolve them again, and
        retire the pools of those whose key changed (a new generation, or no role now)."""
        for old in self.registry.forget_derived():
            if not old.config.role:
                continue
            try:
                new = self.registry.resolve(old.name, None if old.version == LATEST else old.version)
            except Exception:  # deleted meanwhile: its delete retired it
                continue
            if new.key != old.key:
                self.pool.retire(old)
