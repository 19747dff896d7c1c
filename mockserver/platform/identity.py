"""Who calls, and what they may reach: users, projects, API keys, memberships, authentication."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, replace

from qcog_mock.mockserver.documents import ApiKey, Membership, Project, User
from qcog_mock.mockserver.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from qcog_mock.mockserver.platform.shared import Shared, check_name, page
from qcog_mock.mockserver.runparams import GPU_TYPES
from qcog_mock.mockserver.schemas import ProjectMember, ProjectUpdate, WhoAmI

SEED_PROJECT = "qcog-mock"
ROLES = ("viewer", "contributor", "owner")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, the project of their key (if any), and whether they are admin."""

    user: User | None  # None: a key whose user is gone
    project_id: str | None
    admin: bool

    def require_project(self, project_id: str) -> None:
        """Refuse a project this caller's key does not open."""
        if not self.admin and project_id != self.project_id:
            raise Forbidden(f"This API key has no access to project '{project_id}'.")


class Identity:
    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.store = shared.store  # the seed's settings, and keys stored by older versions
        self.records = shared.records
        self._principals: dict[str, Principal] = {}
        self._projects: dict[str, Project] = {}

    # Seed -----------------------------------------------------------------------------------

    def seed(self, project_name: str = SEED_PROJECT, description: str | None = None) -> None:
        """The user and project that the documented examples assume (a seed file may name the
        project otherwise)."""
        now = self.shared.now()
        user = User(
            id=self.shared.new_id(),
            name="qcog-mock user",
            email="user@qcog-mock.local",
            system_role="admin",
            created_at=now,
        )
        self.records.users.put(user)
        project = Project(
            id=self.shared.new_id(),
            name=project_name,
            description=description or "The emulator's default project",
            allowed_gpus=list(GPU_TYPES),
            created_at=now,
            updated_at=now,
        )
        self.records.projects.put(project)
        self._link(user.id, project.id, "owner")
        self.store.set_setting("seed_user", user.id)
        self.store.set_setting("seed_project", project.id)

    def ensure_key(self, key: str) -> None:
        """The configured key always works, also after a restart with another one."""
        if self.records.api_keys.find(key_digest(key)) is None:
            user, project = self.store.setting("seed_user"), self.store.setting("seed_project")
            self._put_key(key, user, project)

    def add_key(self, key: str, user_id: str, project_id: str | None) -> ApiKey:
        """A key chosen by the operator (a seed file's), for that user and project."""
        if self.records.users.get(user_id) is None:
            raise NotFound("User", user_id)
        return self._put_key(key, user_id, project_id)

    def revoke_key(self, key: str) -> bool:
        """Removes ``key``; whether there was one."""
        found = self.records.api_keys.find(key_digest(key))
        if found is not None:
            self.records.api_keys.delete(found.id)
            self.store.checkpoint()
            self._principals.pop(key, None)
        return found is not None

    def hash_stored_keys(self) -> None:
        """Keys stored in clear by earlier versions are kept as digests from now on, and the
        clear text is erased from the file."""
        clear = [doc for doc in self.store.documents("api_key") if "x_api_key" in doc]
        for doc in clear:
            key = doc.pop("x_api_key")
            doc.update(name=key_digest(key), hint=key_hint(key))
            self.store.put("api_key", doc)
        if clear:
            self.store.checkpoint()

    def _put_key(self, key: str, user_id: str, project_id: str | None) -> ApiKey:
        """Stores the key's digest, never the key: the answer that creates it shows it once."""
        api_key = ApiKey(
            id=self.shared.new_id(),
            name=key_digest(key),
            hint=key_hint(key),
            user_id=user_id,
            project_id=project_id,
            created_at=self.shared.now(),
        )
        self.shared.insert(self.records.api_keys, api_key, "This API key already exists.")
        return api_key

    def _link(self, user_id: str, project_id: str, role: str) -> Membership:
        membership = Membership(
            id=self.shared.new_id(),
            name=f"{user_id}:{project_id}",
            user_id=user_id,
            project_id=project_id,
            role=role,
            created_at=self.shared.now(),
        )
        self.shared.insert(
            self.records.memberships,
            membership,
            f"User '{user_id}' is already in project '{project_id}'.",
        )
        return membership

    # Authentication -------------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> Principal:
        hint = "send the header 'Authorization: x-api-key <key>'"
        if not authorization:
            raise Unauthorized(f"Missing API key: {hint}.")
        scheme, _, credential = authorization.strip().partition(" ")
        if scheme.lower() == "x-api-key" and credential.strip():
            return self._by_key(credential.strip(), hint)
        if scheme.lower() == "basic":
            try:
                username, _, password = base64.b64decode(credential).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise Unauthorized("Malformed basic credentials.") from None
            if self.is_admin_login(username, password):
                return Principal(self.admin_user(), None, True)
            raise Unauthorized("Invalid basic credentials.")
        raise Unauthorized(f"Invalid authorization scheme: {hint}.")

    def is_admin_login(self, username: str, password: str) -> bool:
        s = self.shared.settings
        # Both compared, as bytes: compare_digest refuses non-ASCII text.
        name_ok = secrets.compare_digest(username.encode(), s.admin_username.encode())
        password_ok = secrets.compare_digest(password.encode(), s.admin_password.encode())
        return name_ok and password_ok

    def _by_key(self, secret: str, hint: str) -> Principal:
        # Keys and their users never change once made (a reset builds a new Identity), so a
        # key's principal is looked up once: every request authenticates.
        if (known := self._principals.get(secret)) is not None:
            return known
        key = self.records.api_keys.find(key_digest(secret))
        if key is None:
            raise Unauthorized(f"Invalid API key: {hint} with a key this server knows.")
        user = self.records.users.get(key.user_id)
        admin = user is not None and user.system_role == "admin"
        principal = Principal(user, key.project_id, admin)
        self._principals[secret] = principal
        return principal

    def whoami(self, principal: Principal) -> WhoAmI:
        project = self.records.projects.get(principal.project_id) if principal.project_id else None
        datasets = [d.summary() for d in self.records.datasets.all(project.id)] if project else []
        user = principal.user
        return WhoAmI(
            user_id=user.id if user else None,
            user_name=user.name if user else None,
            project_id=project.id if project else None,
            project_name=project.name if project else None,
            system_permissions=["system.read", "system.write"] if principal.admin else [],
            project_permissions=(
                ["project.admin", "dataset.read", "dataset.write", "run.read", "run.write"]
                if project
                else []
            ),
            datasets=datasets,
        )

    # Users, projects, keys ------------------------------------------------------------------

    def admin_user(self) -> User:
        username = self.shared.settings.admin_username
        found = self.records.users.find(f"admin:{username}")
        if found is not None:
            return found
        user = User(
            id=self.shared.new_id(),
            name=f"admin:{username}",
            email=f"{username}@qcog-mock.local",
            system_role="admin",
            created_at=self.shared.now(),
        )
        self.records.users.put(user)
        return user

    def create_user(self, email: str, name: str, system_role: str) -> User:
        check_name("email", email)
        check_name("name", name)
        if system_role not in ("admin", "user"):
            raise Invalid("system_role: must be 'admin' or 'user'.")
        with self.shared.lock:  # the e-mail is not a unique column: checked and written as one
            if any(u.email == email for u in self.records.users.all()):
                raise Conflict(f"A user with email '{email}' already exists.")
            user = User(
                id=self.shared.new_id(),
                name=name,
                email=email,
                system_role=system_role,
                created_at=self.shared.now(),
            )
            self.shared.insert(self.records.users, user, f"A user named '{name}' already exists.")
        return user

    def user_by_email(self, email: str) -> User:
        for user in self.records.users.all():
            if user.email == email:
                return user
        raise NotFound("User", email, by="email")

    def list_projects(self, limit: int, offset: int) -> list[Project]:
        return page(self.records.projects.all(), limit, offset)

    def project_by_name(self, name: str) -> Project:
        found = self.records.projects.find(name)
        if found is None:
            raise NotFound("Project", name, by="name")
        return found

    def get_project(self, project_id: str) -> Project:
        # Every project-scoped request reads its project: kept, and replaced when it changes.
        if (known := self._projects.get(project_id)) is not None:
            return replace(known)
        found = self.records.projects.get(project_id)
        if found is None:
            raise NotFound("Project", project_id)
        project = self._projects[project_id] = found
        return replace(project)

    def create_project(
        self, name: str, description: str | None, members: list[ProjectMember]
    ) -> Project:
        check_name("name", name)
        if self.records.projects.find(name) is not None:
            raise Conflict(f"A project named '{name}' already exists.")
        for member in members:
            if self.records.users.get(member.user_id) is None:
                raise NotFound("User", member.user_id)
        now = self.shared.now()
        project = Project(
            id=self.shared.new_id(),
            name=name,
            description=description,
            allowed_gpus=[],
            created_at=now,
            updated_at=now,
        )
        self.shared.insert(
            self.records.projects, project, f"A project named '{name}' already exists."
        )
        for member in members:
            self._link(member.user_id, project.id, member.project_role)
        return project

    def update_project(self, project_id: str, changes: ProjectUpdate) -> Project:
        project = self.get_project(project_id)
        if changes.allowed_gpus is not None:
            unknown = [g for g in changes.allowed_gpus if g not in GPU_TYPES]
            if unknown:
                raise Invalid(
                    f"allowed_gpus: unknown GPU type(s) {unknown}; use {list(GPU_TYPES)}."
                )
            project.allowed_gpus = list(dict.fromkeys(changes.allowed_gpus))
        if changes.description is not None:
            project.description = changes.description
        project.updated_at = self.shared.now()
        self.records.projects.put(project)
        self._projects[project_id] = replace(project)
        return project

    def create_api_key(self, user_id: str, project_id: str | None) -> tuple[ApiKey, str]:
        """The new key's record, and the key (shown once, never stored)."""
        if self.records.users.get(user_id) is None:
            raise NotFound("User", user_id)
        if project_id is not None:
            self.get_project(project_id)
        key = f"qcog-mock-{secrets.token_hex(16)}"
        return self._put_key(key, user_id, project_id), key

    def add_user_to_project(self, user_id: str, project_id: str, role: str) -> Membership:
        if role not in ROLES:
            raise Invalid("role: must be 'viewer', 'contributor' or 'owner'.")
        if self.records.users.get(user_id) is None:
            raise NotFound("User", user_id)
        self.get_project(project_id)
        if self.records.memberships.find(f"{user_id}:{project_id}") is not None:
            raise Conflict(f"User '{user_id}' is already in project '{project_id}'.")
        return self._link(user_id, project_id, role)


def key_digest(key: str) -> str:
    # SHA-256 suffices: keys are 128-bit random tokens (or an operator's chosen secret), not
    # passwords to be guessed; a salt would stop the lookup by digest.
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def key_hint(key: str) -> str:
    """Enough of a key to tell which it is, never enough to use it."""
    return f"{key[:10]}…" if len(key) > 16 else "…"
