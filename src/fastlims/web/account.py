"""The signed-in user's own account: the password change page.

Changing the password ends every other page session of the user (their cookies, even copied, no
longer open a page); this browser gets a fresh session. The current password is checked through
the same guessing throttle as the login, so the form cannot be used to guess it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fastlims.deps import DbSession
from fastlims.users import service as users
from fastlims.web.deps import PageUser, check_csrf, start_page_session
from fastlims.web.pages import render

router = APIRouter(include_in_schema=False)


@router.get("/account/password", response_class=HTMLResponse)
def password_form(request: Request, user: PageUser, done: bool = False) -> HTMLResponse:
    return render(request, "account_password.html", {"user": user, "error": None, "done": done})


@router.post("/account/password", dependencies=[Depends(check_csrf)])
def change_password(
    request: Request,
    session: DbSession,
    user: PageUser,
    current: Annotated[str, Form()],
    new: Annotated[str, Form()],
    confirm: Annotated[str, Form()],
) -> Response:
    """A plain ``def`` (a worker thread): two argon2 computations must not block the event loop."""

    def refused(message: str, status_code: int) -> HTMLResponse:
        return render(
            request, "account_password.html", {"user": user, "error": message, "done": False}, status_code=status_code
        )

    try:
        checked = users.login(
            session=session,
            throttle=request.app.state.system.login_throttle,
            username=user.username,
            password=current,
            address=request.client.host if request.client else None,
        )
    except users.LoginLocked as exc:
        response = refused(str(exc), 429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if checked is None:
        return refused("The current password is wrong.", 403)
    if new != confirm:
        return refused("The new password and its confirmation differ.", 422)
    try:
        users.change_password(session=session, username=user.username, password=new)
    except users.UserError as exc:
        return refused(f"The new password is refused: {exc}.", 422)
    start_page_session(request, user)  # the new generation: other sessions are over, this one goes on
    return RedirectResponse("/account/password?done=true", status_code=303)
