"""Example workflows shipped with the project, discovered like any app's `workflows.py`, and an
example schedule declared next to the workflow it starts (disabled: turn it on on /schedules).

More examples live as JSON in workflow_definitions/ (error-recovery-workflow,
failing-workflow), loaded from settings.C4C_WORKFLOW_DIRS.
"""

from .builder import Workflow, parallel, step
from .library import register_workflow
from .schedules import ScheduleDeclaration, declare_schedule

register_workflow(
    Workflow(
        "simple-math-workflow",
        name="Simple Math Workflow",
        description="Basic math operations workflow for testing",
        version="1.0.0",
    )
    .procedure("add", "math.add", config={"a": 10, "b": 5})
    .procedure("multiply", "math.multiply", config={"a": 3, "b": 2})
    .procedure("subtract", "math.subtract", config={"a": 20, "b": 8})
    .build()
)

register_workflow(
    Workflow(
        "long-running-workflow",
        name="Long Running Workflow (1 minute)",
        description="Demonstrates real-time updates with delays - takes about 1 minute to complete",
        version="1.0.0",
    )
    .procedure("start", "custom.log", config={"message": "Long-running workflow started"})
    .procedure("warm-up", "custom.delay", config={"ms": 10_000})
    .procedure("fetch-data", "data.fetch", config={"source": "metrics"})
    .parallel(
        "fan-out",
        [
            step("slow-a", "custom.delay", config={"ms": 10_000}),
            step("slow-b", "custom.delay", config={"ms": 15_000}),
        ],
    )
    .procedure("crunch", "math.add", config={"a": "{{fetch-data.count}}", "b": 100})
    .procedure("cool-down", "custom.delay", config={"ms": 15_000})
    .procedure("settle", "custom.delay", config={"ms": 20_000})
    .procedure(
        "finish",
        "custom.log",
        config={"message": "Long-running workflow finished: {{crunch.result}}"},
    )
    .build()
)

register_workflow(
    Workflow(
        "branching-workflow",
        name="Branching Workflow",
        description="Fetches orders, then analyses them in parallel when there are enough",
        version="1.0.0",
        variables={"minimum": 5},
    )
    .procedure("fetch", "data.fetch", config={"source": "orders", "limit": 10})
    .condition(
        "enough-orders",
        expression="count >= minimum",
        when_true=parallel(
            "analyse",
            [
                step("score", "math.multiply", config={"a": "{{fetch.count}}", "b": 10}),
                step(
                    "announce", "custom.log", config={"message": "Analysing {{fetch.count}} orders"}
                ),
            ],
        ),
        when_false=step(
            "too-few",
            "custom.log",
            config={"message": "Only {{fetch.count}} orders", "level": "warning"},
        ),
    )
    .procedure("report", "custom.log", config={"message": "Checked {{fetch.count}} orders"})
    .build()
)

declare_schedule(
    ScheduleDeclaration(
        "simple-math-every-minute",
        workflow_id="simple-math-workflow",
        cron="* * * * *",
        input={"note": "started by the example schedule"},
        enabled=False,
    )
)
