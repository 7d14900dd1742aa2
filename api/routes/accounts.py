"""Auth, devices and users: ``/v1/auth/*``, ``/v1/devices*``, ``/v1/users*``."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import AuthDep, CallerDep, ClientDep
from api.error_docs import AUTHED, WITH_BODY, errors
from api.responses import DeviceOut, LoginOut, SignupOut, UserOut
from api.schemas import LoginIn, PushIn, SignupIn
from gateway.wire import rfc3339_or_none
from inbox.accounts.service import DeviceStatus
from inbox.core.ids import parse_id
from inbox.core.models import PushTarget, User

router = APIRouter(prefix="/v1", tags=["accounts"])


def user_out(user: User) -> UserOut:
    return UserOut(user_id=str(user.user_id), username=user.username,
                   display_name=user.display_name)


def device_out(status: DeviceStatus) -> DeviceOut:
    """A device as ``GET /v1/devices`` lists it."""
    device = status.device
    return DeviceOut.model_validate({
        "device_id": str(device.device_id),
        "device_name": device.device_name,
        "platform": device.platform,
        "online": status.online,
        "cur_max_msg_id": str(device.cur_max_msg_id),
        "push": {"provider": device.push.provider} if device.push else None,
        "last_seen": rfc3339_or_none(status.last_seen_ms),
    })


@router.post("/auth/signup", status_code=201, responses=errors(*WITH_BODY, 409, 429, 503))
async def signup(body: SignupIn, client: ClientDep, auth: AuthDep) -> SignupOut:
    """Create an account (no token: log in next). Limited per client address (429)."""
    user = await auth.signup(body.username, body.password, body.display_name,
                                      client=client)
    return SignupOut(user_id=str(user.user_id), username=user.username)


@router.post("/auth/login", responses=errors(*WITH_BODY, 401, 403, 404, 429, 503))
async def login(body: LoginIn, client: ClientDep, auth: AuthDep) -> LoginOut:
    """Log a device in: a new device, or the known ``device_id`` of this user again.
    Failed attempts are limited per username and per client address (429)."""
    device, token = await auth.login(
        body.username, body.password, body.platform, body.device_id, body.device_name,
        client=client,
    )
    return LoginOut(access_token=token.access_token, token_type="bearer",  # noqa: S106
                    expires_in=token.expires_in, user_id=str(device.user_id),
                    device_id=str(device.device_id))


@router.get("/devices", responses=errors(*AUTHED))
async def devices(caller: CallerDep, auth: AuthDep) -> list[DeviceOut]:
    """The caller's devices, logged-out ones left out."""
    return [device_out(status) for status in await auth.devices(caller)]


@router.put("/devices/{device_id}/push", status_code=204,
            responses=errors(*AUTHED, *WITH_BODY, 403, 404))
async def set_push(device_id: str, body: PushIn, caller: CallerDep, auth: AuthDep
                   ) -> Response:
    """Register the device's push token (one per device; taken from any other device)."""
    target = PushTarget(body.provider, body.token, body.topic)
    await auth.set_push(caller, parse_id(device_id, "device_id"), target)
    return Response(status_code=204)


@router.delete("/devices/{device_id}/push", status_code=204,
               responses=errors(*AUTHED, 403, 404, 422))
async def clear_push(device_id: str, caller: CallerDep, auth: AuthDep) -> Response:
    """Remove the device's push token."""
    await auth.clear_push(caller, parse_id(device_id, "device_id"))
    return Response(status_code=204)


@router.delete("/devices/{device_id}", status_code=204, responses=errors(*AUTHED, 403, 404, 422))
async def logout(device_id: str, caller: CallerDep, auth: AuthDep) -> Response:
    """Log one of the caller's devices out: its token fails and its sockets close (4001)."""
    target = parse_id(device_id, "device_id")
    await auth.logout(caller, target)
    return Response(status_code=204)


@router.get("/users/me", responses=errors(*AUTHED))
async def me(caller: CallerDep, auth: AuthDep) -> UserOut:
    """The caller's own account."""
    return user_out(await auth.user(caller.user_id))


@router.get("/users/{user_id}", responses=errors(*AUTHED, 404, 422))
async def get_user(user_id: str, _: CallerDep, auth: AuthDep) -> UserOut:
    """Any user by id."""
    return user_out(await auth.user(parse_id(user_id, "user_id")))


@router.get("/users", responses=errors(*AUTHED, 404, 422))
async def find_user(username: str, _: CallerDep, auth: AuthDep) -> UserOut:
    """Any user by exact username."""
    return user_out(await auth.find(username))
