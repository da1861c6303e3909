"""GET /api/v1/health: the one route that needs no token."""

from fastapi import APIRouter
from sqlalchemy import text

from postroom import __version__
from postroom.api.deps import ContainerDep

router = APIRouter(prefix="/api/v1", tags=["health"])


@router.get("/health")
def health(container: ContainerDep) -> dict[str, str]:
    with container.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return {"status": "ok", "version": __version__}
