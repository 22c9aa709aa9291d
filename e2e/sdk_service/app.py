"""The Restate SDK service the real tier registers through a RestateDeployment.

Built into the ``sdk`` image (e2e/images.py) from PyPI's ``restate-sdk``, served by
hypercorn over h2c on port 9080. Two services:

- ``Version/which`` answers the pod's ``SERVICE_VERSION``, so a test tells which version of
  a RestateDeployment Restate routed an invocation to;
- the ``Hold`` workflow: ``run`` waits on a durable promise, so its invocation stays pinned to
  the deployment it started on until ``release`` (a shared handler, served by whichever
  version is latest by then) resolves it.

- the ``Counter`` virtual object: ``add`` adds to a number kept in Restate's state (its
  partition's store), ``get`` reads it: user data that must survive what the operator does
  to the cluster (scale-down, rolling updates).

``BREAKING=1`` makes ``Version`` a virtual object instead of a service: a service-type change
that Restate refuses to register (META0006).
"""

import os

import restate
from restate import (
    Context,
    ObjectContext,
    ObjectSharedContext,
    Service,
    VirtualObject,
    Workflow,
    WorkflowContext,
    WorkflowSharedContext,
)

VERSION = os.environ.get("SERVICE_VERSION", "unset")

if os.environ.get("BREAKING") == "1":
    version_object = VirtualObject("Version")

    @version_object.handler()
    async def which_object(ctx: ObjectContext) -> str:
        return VERSION

    version: Service | VirtualObject = version_object
else:
    version_service = Service("Version")

    @version_service.handler()
    async def which(ctx: Context) -> str:
        return VERSION

    version = version_service

hold = Workflow("Hold")


@hold.main()
async def run(ctx: WorkflowContext) -> str:
    await ctx.promise("release").value()
    return VERSION


@hold.handler()
async def release(ctx: WorkflowSharedContext) -> str:
    await ctx.promise("release").resolve("go")
    return VERSION


counter = VirtualObject("Counter")


@counter.handler()
async def add(ctx: ObjectContext, value: int) -> int:
    total = int(await ctx.get("total") or 0) + value
    ctx.set("total", total)
    return total


@counter.handler(kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return int(await ctx.get("total") or 0)


app = restate.app(services=[version, hold, counter])
