"""mi-monitor-app: the FastAPI service from the guide cloudship automates."""

import os
import platform
import time

from fastapi import FastAPI

app = FastAPI(title="mi-monitor-app")
STARTED = time.time()


@app.get("/")
def root() -> dict[str, str]:
    return {
        "app": "mi-monitor-app",
        "message": "¡Funciona en la nube igual que en tu máquina!",
        "version": os.environ.get("APP_VERSION", "1.0"),
        "mode": os.environ.get("MODE", "dev"),
    }


@app.get("/health")
def health() -> dict[str, object]:
    return {
        "status": "ok",
        "uptime_seconds": round(time.time() - STARTED, 1),
        "python": platform.python_version(),
    }
