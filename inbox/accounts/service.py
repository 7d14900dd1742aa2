"""Accounts: signup, login (one session per device), logout, and token authentication."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from idgen.clock import Clock
from inbox.accounts.port import AccountStore
from inbox.accounts.security import IssuedToken, TokenIssuer, hash_password, verify_password
from inbox.accounts.throttle import ClientThrottle
from inbox.core.errors import (
    Conflict,
    Forbidden,
    InvalidCredentials,
    InvalidInput,
    NotFound,
    Unauthorized,
)
from inbox.core.models import Caller, Device, PushTarget, User

USERNAME = re.compile(r"[a-z0-9_.-]{3,32}")
PLATFORMS = frozenset({"ios", "android", "web", "desktop", "cli"})
PUSH_PROVIDERS = frozenset({"fcm", "apns"})
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
MAX_NAME = 64
MAX_PUSH_TOKEN = 4096
MAX_PUSH_TOPIC = 255


def check_username(username: str) -> None:
    """A username breaking the signup rule can name no account: refused before any lookup
    (every backend answers the same, and no store sees a key it cannot take)."""
    if not USERNAME.fullmatch(username):
        raise InvalidInput("username must be 3-32 characters of a-z 0-9 _ . -")


def check_signup(username: str, password: str, display_name: str | None) -> None:
    """API rules for a new account."""
    check_username(username)
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"password must be {MIN_PASSWORD}..{MAX_PASSWORD} characters")
    if display_name is not None and not 1 <= len(display_name) <= MAX_NAME:
        raise InvalidInput(f"display_name must be 1..{MAX_NAME} characters")


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """A device as its user sees it listed: online now or not, and when it was last seen."""

    device: Device
    online: bool
    last_seen_ms: int | None


class LiveSessions(Protocol):
    """The devices' live connections, on every node (the gateway's ``Hub``)."""

    async def online_devices(self, user_id: int) -> set[int]:
        """Devices of the user holding a live connection."""
        ...

    async def end(self, user_id: int, device_id: int) -> None:
        """Close the device's live connections (a logout), wherever they are."""
        ...


class AccountService:
    """Users, devices and the tokens that act as one device of one user."""

    def __init__(
        self,
        accounts: AccountStore,
        tokens: TokenIssuer,
        next_id: Callable[[], int],
        clock: Clock,
        throttle: ClientThrottle,
        sessions: LiveSessions | None = None,
    ) -> None:
        """``sessions``: the devices' live connections (None where there are none)."""
        self._accounts = accounts
        self.tokens = tokens
        self._next_id = next_id
        self._clock = clock
        self._throttle = throttle
        self._sessions = sessions

    async def signup(self, username: str, password: str, display_name: str | None, *,
                     client: str) -> User:
        """Create a user; ``client`` (a ``client_key``) is counted once the input is valid."""
        check_signup(username, password, display_name)
        await self._throttle.signup(client)
        if await self._accounts.find_user(username) is not None:
            raise Conflict(f"username {username!r} is taken", code="username_taken")
        user = User(
            user_id=self._next_id(),
            username=username,
            display_name=display_name or username,
            password_hash=await hash_password(password),
            created_at_ms=self._clock.now_ms(),
        )
        await self._accounts.create_user(user)
        return user

    async def login(
        self,
        username: str,
        password: str,
        platform: str,
        device_id: int | None = None,
        device_name: str | None = None,
        *,
        client: str,
    ) -> tuple[Device, IssuedToken]:
        """Check the password and start (or resume) a device session.

        Failed attempts are limited per username and per ``client`` (see ``ClientThrottle``);
        a refused attempt reads nothing and hashes nothing. A username no signup could have
        made is refused at once (422), before any limit or lookup.
        """
        if platform not in PLATFORMS:
            raise InvalidInput(f"platform must be one of {', '.join(sorted(PLATFORMS))}")
        check_username(username)
        async with self._throttle.login(username, client):
            return await self._login(username, password, platform, device_id, device_name)

    async def _login(self, username: str, password: str, platform: str, device_id: int | None,
                     device_name: str | None) -> tuple[Device, IssuedToken]:
        user = await self._accounts.find_user(username)
        if user is None or not await verify_password(password, user.password_hash):
            raise InvalidCredentials("wrong username or password")
        if device_id is not None:
            device = await self._own_device(Caller(user.user_id, 0), device_id)
            if not device.active:
                raise NotFound(f"device {device_id} was logged out")
            name = (device_name or device.device_name)[:MAX_NAME]
            device = replace(device, platform=platform, device_name=name)
            # Written without the cursor and token read above (put_device keeps the stored
            # ones): an ack or a token change landing meanwhile must not be undone.
            stored = replace(device, cur_max_msg_id=0, push=None)
        else:
            device = stored = Device(
                device_id=self._next_id(),
                user_id=user.user_id,
                device_name=(device_name or platform)[:MAX_NAME],
                platform=platform,
                active=True,
                cur_max_msg_id=0,
                created_at_ms=self._clock.now_ms(),
            )
        await self._accounts.put_device(stored)
        return device, self.tokens.issue(Caller(user.user_id, device.device_id))

    async def authenticate(self, token: str | None) -> Caller:
        """The caller of a token whose device is still logged in; Unauthorized otherwise."""
        if not token:
            raise Unauthorized("missing bearer token")
        caller = self.tokens.verify(token)
        device = await self._accounts.get_device(caller.device_id)
        if device is None or not device.active or device.user_id != caller.user_id:
            raise Unauthorized("this device was logged out", code="invalid_token")
        return caller

    async def user(self, user_id: int) -> User:
        user = await self._accounts.get_user(user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        return user

    async def find(self, username: str) -> User:
        check_username(username)
        user = await self._accounts.find_user(username)
        if user is None:
            raise NotFound(f"no user {username!r}")
        return user

    async def devices(self, caller: Caller) -> list[DeviceStatus]:
        """The caller's logged-in devices, each online or not; an online device's
        ``last_seen`` is now."""
        devices = await self._accounts.list_devices(caller.user_id)
        online = (await self._sessions.online_devices(caller.user_id)
                  if self._sessions is not None else set())
        now_ms = self._clock.now_ms()
        return [DeviceStatus(d, d.device_id in online,
                             now_ms if d.device_id in online else d.last_seen_ms)
                for d in devices]

    async def logout(self, caller: Caller, device_id: int) -> None:
        """Log one of the caller's devices out: its token fails from now on and its live
        sockets, on any node, are closed (4001)."""
        await self._own_device(caller, device_id)
        await self._accounts.deactivate_device(device_id)
        if self._sessions is not None:
            await self._sessions.end(caller.user_id, device_id)

    async def set_push(self, caller: Caller, device_id: int, target: PushTarget) -> None:
        if target.provider not in PUSH_PROVIDERS:
            raise InvalidInput("provider must be 'fcm' or 'apns'")
        if not 1 <= len(target.token) <= MAX_PUSH_TOKEN:
            raise InvalidInput(f"token must be 1..{MAX_PUSH_TOKEN} characters")
        if target.topic is not None and not 1 <= len(target.topic) <= MAX_PUSH_TOPIC:
            raise InvalidInput(f"topic must be 1..{MAX_PUSH_TOPIC} characters")
        await self._active_own_device(caller, device_id)
        await self._accounts.set_push(device_id, target)

    async def clear_push(self, caller: Caller, device_id: int) -> None:
        await self._active_own_device(caller, device_id)
        await self._accounts.clear_push(device_id)

    async def _active_own_device(self, caller: Caller, device_id: int) -> Device:
        device = await self._own_device(caller, device_id)
        if not device.active:
            raise NotFound(f"device {device_id} was logged out")
        return device

    async def _own_device(self, caller: Caller, device_id: int) -> Device:
        device = await self._accounts.get_device(device_id)
        if device is None:
            raise NotFound(f"no device {device_id}")
        if device.user_id != caller.user_id:
            raise Forbidden(f"device {device_id} belongs to another user")
        return device
