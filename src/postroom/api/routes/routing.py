"""POST /api/v1/routing/explain: which account would send, and why, step by step."""

from __future__ import annotations

from fastapi import APIRouter

from postroom.api.deps import ActorDep, ContainerDep
from postroom.api.schemas.outbox import RouteExplain, RoutePublic, RouteStepPublic

router = APIRouter(prefix="/api/v1/routing", tags=["routing"])


@router.post("/explain", response_model=RoutePublic)
def explain(body: RouteExplain, container: ContainerDep, actor: ActorDep) -> RoutePublic:
    decision = container.routing.explain(actor, body.account_id, body.sender_user_id)
    return RoutePublic(
        account_id=decision.account_id,
        account_name=decision.account_name,
        steps=[RouteStepPublic.model_validate(s) for s in decision.steps],
        explanation=decision.explanation,
    )
