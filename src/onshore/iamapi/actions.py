"""One function per IAM action, named as the action. Each gets the caller's tenant (account id),
the caller's own user name (the default ``UserName`` where IAM has one) and the form parameters,
and returns the children of ``<{Action}Result>`` (None for actions with no result)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from onshore.domain.iam import AccessKey, KeyStatus, NoSuchEntity, User, ValidationError
from onshore.iamapi.wire import element, escape, members, timestamp
from onshore.service.iam import IamService


@dataclass(frozen=True, slots=True)
class Caller:
    account_id: str
    user_name: str


Params = Mapping[str, str]
Result = list[str] | None
Action = Callable[[IamService, Caller, Params], Awaitable[Result]]
ACTIONS: dict[str, Action] = {}

#: The actions that change nothing. Every other action is a write, refused for a tenant being
#: offboarded (:mod:`onshore.service.offboarding.gate`); an action added later is a write until
#: it is listed here.
READS = frozenset({"GetUser", "ListUsers", "ListAccessKeys", "GetUserPolicy", "ListUserPolicies"})


def action(fn: Action) -> Action:
    ACTIONS[fn.__name__] = fn
    return fn


def _required(params: Params, name: str) -> str:
    value = params.get(name)
    if not value:
        raise ValidationError(f"1 validation error detected: Value at '{name}' failed to satisfy "
                              "constraint: Member must not be null")  # fmt: skip
    return value


def _user_xml(iam: IamService, user: User) -> str:
    return (
        element("Path", "/")
        + element("UserName", user.name)
        + element("UserId", user.user_id)
        + element("Arn", iam.user_arn(user))
        + element("CreateDate", timestamp(user.created))
    )


def _key_xml(key: AccessKey) -> str:
    return (
        element("UserName", key.user_name)
        + element("AccessKeyId", key.access_key)
        + element("Status", key.status.value)
        + element("CreateDate", timestamp(key.created))
    )


async def _own_key(iam: IamService, caller: Caller, params: Params) -> AccessKey:
    """The key ``AccessKeyId`` names, which must belong to ``UserName`` (default: the caller)."""
    key_id = _required(params, "AccessKeyId")
    user_name = params.get("UserName") or caller.user_name
    try:
        key = await iam.key(key_id)
    except NoSuchEntity:
        key = None
    if (
        key is None
        or key.account_id != caller.account_id
        or key.user_name.lower() != user_name.lower()
    ):
        raise NoSuchEntity(f"The Access Key with id {key_id} cannot be found.")
    return key


# --- users --------------------------------------------------------------------------------------
@action
async def CreateUser(iam: IamService, caller: Caller, params: Params) -> Result:  # noqa: N802
    """https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateUser.html"""
    if params.get("Path", "/") != "/":
        raise ValidationError("onshore supports only the path '/'.")
    user = await iam.create_user(caller.account_id, _required(params, "UserName"))
    return [f"<User>{_user_xml(iam, user)}</User>"]


@action
async def GetUser(iam: IamService, caller: Caller, params: Params) -> Result:  # noqa: N802
    """https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetUser.html"""
    user = await iam.user(caller.account_id, params.get("UserName") or caller.user_name)
    return [f"<User>{_user_xml(iam, user)}</User>"]


@action
async def DeleteUser(iam: IamService, caller: Caller, params: Params) -> Result:  # noqa: N802
    """https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteUser.html"""
    await iam.delete_user(caller.account_id, _required(params, "UserName"))
    return None


@action
async def ListUsers(iam: IamService, caller: Caller, params: Params) -> Result:  # noqa: N802
    """https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListUsers.html (one page)"""
    users = await iam.list_users(caller.account_id)
    return [members("Users", (_user_xml(iam, u) for u in users)), element("IsTruncated", False)]


# --- access keys --------------------------------------------------------------------------------
@action
async def CreateAccessKey(iam: IamService, caller: Caller, params: Params) -> Result:  # noqa: N802
    """https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateAccessKey.html"""
    new = await iam.create_key(caller.account_id, params.get("UserName") or caller.user_name)
    secret = element("SecretAccessKey", new.secret_key)
    return [f"<AccessKey>{_key_xml(new.key)}{secret}</AccessKey>"]


@action
async def ListAccessKeys(iam: IamService, caller: Caller, params: Params) -> Result:  # noqa: N802
    """https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListAccessKeys.html"""
    user_name = params.get("UserName") or caller.user_name
    keys = await iam.list_keys(caller.account_id, user_name)
    user = await iam.user(caller.account_id, user_name)
    return [
        element("UserName", user.name),
        members("AccessKeyMetadata", (_key_xml(k) for k in keys)),
        element("IsTruncated", False),
    ]


@action
async def DeleteAccessKey(iam: IamService, caller: Caller, params: Params) -> Result:  # noqa: N802
    """https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteAccessKey.html"""
    key = await _own_key(iam, caller, params)
    await iam.delete_key(caller.account_id, key.access_key)
    return None


@action
async def UpdateAccessKey(iam: IamService, caller: Caller, params: Params) -> Result:  # noqa: N802
    """https://docs.aws.amazon.com/IAM/latest/APIReference/API_UpdateAccessKey.html"""
    status = _required(params, "Status")
    if status not in (KeyStatus.ACTIVE.value, KeyStatus.INACTIVE.value):
        raise ValidationError(
            f"1 validation error detected: Value '{status}' at 'status' failed to satisfy "
            "constraint: Member must satisfy enum value set: [Active, Inactive]"
        )
    key = await _own_key(iam, caller, params)
    await iam.set_key_status(caller.account_id, key.access_key, KeyStatus(status))
    return None


# --- inline user policies -----------------------------------------------------------------------
@action
async def PutUserPolicy(iam: IamService, caller: Caller, params: Params) -> Result:  # noqa: N802
    """https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutUserPolicy.html"""
    await iam.put_policy(
        caller.account_id,
        _required(params, "UserName"),
        _required(params, "PolicyName"),
        _required(params, "PolicyDocument"),
    )
    return None


@action
async def GetUserPolicy(iam: IamService, caller: Caller, params: Params) -> Result:  # noqa: N802
    """https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetUserPolicy.html

    The document is returned URL-encoded (RFC 3986), as IAM returns it; SDKs decode it."""
    user_name, name = _required(params, "UserName"), _required(params, "PolicyName")
    document = await iam.get_policy(caller.account_id, user_name, name)
    user = await iam.user(caller.account_id, user_name)
    return [
        element("UserName", user.name),
        element("PolicyName", name),
        element("PolicyDocument", quote(document, safe="")),
    ]


@action
async def ListUserPolicies(iam: IamService, caller: Caller, params: Params) -> Result:  # noqa: N802
    """https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListUserPolicies.html"""
    names = await iam.list_policies(caller.account_id, _required(params, "UserName"))
    return [members("PolicyNames", (escape(n) for n in names)), element("IsTruncated", False)]


@action
async def DeleteUserPolicy(iam: IamService, caller: Caller, params: Params) -> Result:  # noqa: N802
    """https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteUserPolicy.html"""
    await iam.delete_policy(
        caller.account_id, _required(params, "UserName"), _required(params, "PolicyName")
    )
    return None
