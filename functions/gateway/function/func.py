"""pickspin gateway: the OpenAI-compatible endpoint (HTTP in, Pick, proxy, events out)."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask

from pickspin.errors import ConfigError
from pickspin.gateway.app import Gateway, Wiring, create_app
from pickspin.httpfunction import FlaskFunction
from pickspin.settings import Settings


class GatewayFunction(FlaskFunction):
    workers = 96  # a2wsgi threads: streamed answers hold one each

    gateway: Gateway | None = None

    def create_app(self, settings: Settings, cfg: Mapping[str, str]) -> Flask:
        needed = ("PICKSPIN_CLASSIFIER_URL", "PICKSPIN_SELECTOR_URL")
        missing = [k for k in needed if not cfg.get(k)]
        if missing:
            raise ConfigError("environment", [f"{k} must be set" for k in missing])
        wiring = Wiring(
            classifier_url=cfg["PICKSPIN_CLASSIFIER_URL"],
            selector_url=cfg["PICKSPIN_SELECTOR_URL"],
            sink=cfg.get("K_SINK") or None,
            replicas_url=cfg.get("PICKSPIN_REPLICAS_URL") or None,
        )
        self.gateway = Gateway(settings, wiring)
        return create_app(self.gateway)

    def stop(self) -> None:
        super().stop()
        if self.gateway is not None:
            self.gateway.close()


def new() -> GatewayFunction:
    return GatewayFunction()
