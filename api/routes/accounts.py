"""Auth, devices and users: ``/v1/auth/*``, ``/v1/devices*``, ``/v1/users*``."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import CallerDep, ClientDep, ServicesDep
from api.error_docs import AUTHED, WITH_BODY, errors
from api.responses import DeviceOut, LoginOut, SignupOut, UserOut
from api.schemas import LoginIn, PushIn, SignupIn
from gateway.wire import rfc3339_or_none
from inbox.core.ids import parse_id
from inbox.core.models import Device, PushTarget, User

router = APIRouter(prefix="/v1", tags=["accounts"])


def user_out(user: User) -> UserOut:
    return UserOut(user_id=str(user.user_id), username=user.username,
                   display_name=user.display_name)


def device_out(device: Device, online: bool, now_ms: int | None = None) -> DeviceOut:
    """A device as ``GET /v1/devices`` lists it; an online device was last seen now."""
    last_seen = now_ms if online and now_ms is not None else device.last_seen_ms
    return DeviceOut.model_validate({
        "device_id": str(device.device_id),
        "device_name": device.device_name,
        "platform": device.platform,
        "online": online,
        "cur_max_msg_id": str(device.cur_max_msg_id),
        "push": {"provider": device.push.provider} if device.push else None,
        "last_seen": rfc3339_or_none(last_seen),
    })


@router.post("/auth/signup", status_code=201, responses=errors(*WITH_BODY, 409, 429, 503))
async def signup(body: SignupIn, client: ClientDep, services: ServicesDep) -> SignupOut:
    """Create an account (no token: log in next). Limited per client address (429)."""
    user = await services.auth.signup(body.username, body.password, body.display_name,
                                      client=client)
    return SignupOut(user_id=str(user.user_id), username=user.username)


@router.post("/auth/login", responses=errors(*WITH_BODY, 401, 403, 404, 429, 503))
async def login(body: LoginIn, client: ClientDep, services: ServicesDep) -> LoginOut:
    """Log a device in: a new device, or the known ``device_id`` of this user again.
    Failed attempts are limited per username and per client address (429)."""
    device, token = await services.auth.login(
        body.username, body.password, body.platform, body.device_id, body.device_name,
        client=client,
    )
    return LoginOut(access_token=token.access_token, token_type="bearer",  # noqa: S106
                    expires_in=token.expires_in, user_id=str(device.user_id),
                    device_id=str(device.device_id))


@router.get("/devices", responses=errors(*AUTHED))
async def devices(caller: CallerDep, services: ServicesDep) -> list[DeviceOut]:
    """The caller's devices, logged-out ones left out."""
    online = await services.bus.online_devices(caller.user_id)
    now_ms = services.clock.now_ms()
    return [device_out(d, d.device_id in online, now_ms)
            for d in await services.auth.devices(caller)]


@router.put("/devices/{device_id}/push", status_code=204,
            responses=errors(*AUTHED, *WITH_BODY, 403, 404))
async def set_push(device_id: str, body: PushIn, caller: CallerDep, services: ServicesDep
                   ) -> Response:
    """Register the device's push token (one per device; taken from any other device)."""
    target = PushTarget(body.provider, body.token, body.topic)
    await services.auth.set_push(caller, parse_id(device_id, "device_id"), target)
    return Response(status_code=204)


@router.delete("/devices/{device_id}/push", status_code=204,
               responses=errors(*AUTHED, 403, 404, 422))
async def clear_push(device_id: str, caller: CallerDep, services: ServicesDep) -> Response:
    """Remove the device's push token."""
    await services.auth.clear_push(caller, parse_id(device_id, "device_id"))
    return Response(status_code=204)


@router.delete("/devices/{device_id}", status_code=204, responses=errors(*AUTHED, 403, 404, 422))
async def logout(device_id: str, caller: CallerDep, services: ServicesDep) -> Response:
    """Log one of the caller's devices out: its token fails and its sockets close (4001)."""
    target = parse_id(device_id, "device_id")
    await services.auth.logout(caller, target)
    await services.gateway.hub.publish_logout(caller.user_id, target)
    return Response(status_code=204)


@router.get("/users/me", responses=errors(*AUTHED))
async def me(caller: CallerDep, services: ServicesDep) -> UserOut:
    """The caller's own account."""
    return user_out(await services.auth.user(caller.user_id))


@router.get("/users/{user_id}", responses=errors(*AUTHED, 404, 422))
async def get_user(user_id: str, _: CallerDep, services: ServicesDep) -> UserOut:
    """Any user by id."""
    return user_out(await services.auth.user(parse_id(user_id, "user_id")))


@router.get("/users", responses=errors(*AUTHED, 404, 422))
async def find_user(username: str, _: CallerDep, services: ServicesDep) -> UserOut:
    """Any user by exact username."""
    return user_out(await services.auth.find(username))
