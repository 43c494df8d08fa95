"""A careless edit of EngagementWorkflow: one more step at the start, without `workflow.patched`.

Its own module, importing nothing but the workflow: the sandbox re-imports a workflow's module, and a test
module (with asyncpg and the rest) re-imported there corrupts C extensions for the rest of the session.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.inputs import EngagementInput
    from schemas.views import EngagementStatus
    from workflows.engagement import EngagementWorkflow


@workflow.defn(name="EngagementWorkflow")
class EngagementWorkflowChangedWithoutPatch(EngagementWorkflow):
    @workflow.run
    async def run(self, inp: EngagementInput) -> EngagementStatus:
        await workflow.sleep(60, summary="a new step, added without workflow.patched")
        return await super().run(inp)
