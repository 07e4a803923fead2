"""OAuth 2.0 authorization-code flow with PKCE against Spotify's accounts service (spotify/FACTS.md §1).

Authlib's httpx `OAuth2Client` does the protocol steps: it makes `state`, builds the authorize URL with the
S256 challenge, and sends token requests with HTTP Basic client authentication. It is never given a token, so
it cannot auto-refresh; nothing here sleeps. Every token-endpoint answer is checked before Authlib sees it and
mapped to a `SpotifyError` (SECURITY.md OA-7, FZ-2).
"""

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from django.views.decorators.debug import sensitive_variables

from earworm.spotify.client import parse_json_body, parse_model
from earworm.spotify.errors import (
    SpotifyBadRequest,
    SpotifyBadResponse,
    SpotifyError,
    SpotifyInvalidClient,
    SpotifyInvalidGrant,
    SpotifyQuotaExceeded,
    SpotifyRateLimited,
    SpotifyUnavailable,
    body_snippet,
    parse_retry_after,
    resume_time,
)
from earworm.spotify.types import TokenSet

__all__ = ["AuthorizationRequest", "SpotifyOAuth"]

logger = logging.getLogger("earworm.spotify")

# Authlib 1.8+ prefers the `httpx2` fork (pyproject pins it below 1.8). Transports and exceptions here are
# httpx's, so a silent switch would break error mapping: fail at import instead.
if not issubclass(OAuth2Client, httpx.Client):  # pragma: no cover
    raise ImportError("Authlib's OAuth2Client no longer uses httpx; earworm.spotify.oauth needs updating.")

# RFC 7636 §4.1: 43-128 unreserved characters. 48 characters from Authlib's 62-letter alphabet carry 285 bits,
# over the 256 bits SECURITY.md OA-3 asks for.
CODE_VERIFIER_LENGTH = 48
_CODE_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# Token answers are a few hundred bytes; anything near this is not a token answer.
DEFAULT_MAX_TOKEN_RESPONSE_BYTES = 64 * 1024
RETRY_AFTER_CAP = 3600.0
QUOTA_RETRY_AFTER_CAP = 2 * 86400.0
_OAUTH_ERROR_CODE = re.compile(r"[a-z_]{1,40}")


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, plus the two values to keep server-side for this one login (OA-2, OA-3).

    `state` and `code_verifier` are left out of `repr()` so the object can be logged.
    """

    url: str
    state: str = field(repr=False)
    code_verifier: str = field(repr=False)


class _BodyTooLarge(Exception):
    pass


class _CappedStream(httpx.SyncByteStream):
    def __init__(self, stream: httpx.SyncByteStream, cap: int) -> None:
        self._stream = stream
        self._cap = cap

    def __iter__(self) -> Iterator[bytes]:
        total = 0
        for chunk in self._stream:
            total += len(chunk)
            if total > self._cap:
                raise _BodyTooLarge
            yield chunk

    def close(self) -> None:
        self._stream.close()


class _CappedTransport(httpx.BaseTransport):
    """Wraps a transport so that reading more than `cap` body bytes fails (SECURITY.md RL-5).

    Authlib reads token answers whole through `Client.post`, so the cap has to live below it.
    """

    def __init__(self, inner: httpx.BaseTransport, cap: int) -> None:
        self._inner = inner
        self._cap = cap

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > self._cap:
            response.close()
            raise _BodyTooLarge
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_CappedStream(response.stream, self._cap),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._inner.close()


class _NoNetwork(httpx.BaseTransport):
    """Transport for the client that only builds the authorize URL: it must never send anything."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise RuntimeError("building the authorize URL must not make HTTP requests")


class SpotifyOAuth:
    """Spotify's authorization-code flow for a confidential client, with PKCE (S256).

    All configuration comes in through the constructor; the services layer passes the settings in. Token
    requests go to `{accounts_url}/api/token`, the browser to `{accounts_url}/authorize`.
    """

    @sensitive_variables("client_secret")
    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        accounts_url: str,
        redirect_uri: str,
        scopes: list[str],
        timeout: httpx.Timeout,
        transport: httpx.BaseTransport | None = None,
        max_response_bytes: int = DEFAULT_MAX_TOKEN_RESPONSE_BYTES,
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError("client_id and client_secret are required")
        if not accounts_url.startswith(("https://", "http://")):
            raise ValueError("accounts_url must be an http(s) URL")
        if not redirect_uri:
            raise ValueError("redirect_uri is required")
        self._client_id = client_id
        self._client_secret = client_secret
        self._accounts_url = accounts_url.rstrip("/")
        self._redirect_uri = redirect_uri
        self._scopes = list(scopes)
        self._timeout = timeout
        self._transport = transport
        self._max_response_bytes = max_response_bytes

    def __repr__(self) -> str:
        return f"<SpotifyOAuth {self._accounts_url} client_id={self._client_id!r}>"

    @property
    def authorize_url(self) -> str:
        return f"{self._accounts_url}/authorize"

    @property
    def token_url(self) -> str:
        return f"{self._accounts_url}/api/token"

    def _oauth_client(self, transport: httpx.BaseTransport) -> OAuth2Client:
        # `scope` stays unset here: Authlib would otherwise add it to refresh requests.
        return OAuth2Client(
            client_id=self._client_id,
            client_secret=self._client_secret,
            token_endpoint_auth_method="client_secret_basic",
            redirect_uri=self._redirect_uri,
            code_challenge_method="S256",
            timeout=self._timeout,
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            # Count the bytes that arrive, not a decompressed expansion of them.
            headers={"Accept-Encoding": "identity"},
        )

    def authorization_request(self, *, show_dialog: bool = False) -> AuthorizationRequest:
        """Start a login: a fresh `state` and PKCE verifier, and the authorize URL that carries them.

        The URL has `response_type=code`, `client_id`, the configured `redirect_uri` (exactly), `scope`,
        `state`, `code_challenge` and `code_challenge_method=S256`; `show_dialog=true` when asked
        (re-consent). Keep `state` and `code_verifier` server-side; never send the verifier to the browser.
        Returns an `AuthorizationRequest`. Makes no HTTP request; raises nothing.
        """
        code_verifier = generate_token(CODE_VERIFIER_LENGTH)
        extra = {"show_dialog": "true"} if show_dialog else {}
        with self._oauth_client(_NoNetwork()) as oauth:
            url, state = oauth.create_authorization_url(
                self.authorize_url, code_verifier=code_verifier, scope=self._scopes, **extra
            )
        return AuthorizationRequest(url=url, state=state, code_verifier=code_verifier)

    @sensitive_variables()
    def exchange_code(self, *, code: str, code_verifier: str) -> TokenSet:
        """Trade the callback's `code` for tokens (`grant_type=authorization_code`).

        Sends HTTP Basic client authentication, plus `code`, `redirect_uri` (the configured one) and
        `code_verifier` in the form body. Returns a `TokenSet`. Raises `ValueError` for an empty code or a
        malformed verifier; `SpotifyInvalidGrant` (bad, reused or expired code), `SpotifyInvalidClient`,
        `SpotifyBadRequest`, `SpotifyRateLimited`/`SpotifyQuotaExceeded`, `SpotifyUnavailable` or
        `SpotifyBadResponse` for the token endpoint's failures.
        """
        if not code:
            raise ValueError("code is required")
        if not _CODE_VERIFIER.fullmatch(code_verifier):
            raise ValueError("code_verifier must be 43-128 unreserved characters")
        token = self._token_request(
            "authorization_code",
            lambda oauth: oauth.fetch_token(
                self.token_url,
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
                redirect_uri=self._redirect_uri,
            ),
        )
        if token.scope is not None and set(token.scope.split()) != set(self._scopes):
            # OA-7: flag a granted scope that differs from the request; scope names are safe to log.
            logger.warning("Spotify granted scopes %r, not the requested %r.", token.scope, " ".join(self._scopes))
        return token

    @sensitive_variables()
    def refresh(self, *, refresh_token: str) -> TokenSet:
        """Get a new access token with a refresh token (`grant_type=refresh_token`, HTTP Basic auth).

        Returns a `TokenSet`; its `refresh_token` is `None` when Spotify kept the old one (keep using it), and
        set when Spotify rotated it (store it with the access token, discard the old). Raises `ValueError` for
        an empty refresh token; `SpotifyInvalidGrant` when the refresh token is revoked or expired (the user
        must log in again), and the other token-endpoint errors listed on `exchange_code`.
        """
        if not refresh_token:
            raise ValueError("refresh_token is required")
        return self._token_request(
            "refresh_token",
            lambda oauth: oauth.refresh_token(self.token_url, refresh_token=refresh_token),
        )

    @sensitive_variables()
    def _token_request(self, grant_type: str, call: Callable[[OAuth2Client], object]) -> TokenSet:
        """Run one token request through Authlib, checking the answer in a compliance hook before Authlib
        parses it. Returns the validated `TokenSet`; raises `SpotifyError` subclasses."""
        checked: list[TokenSet] = []

        def check(response: httpx.Response) -> httpx.Response:
            checked.append(self._check_token_response(response, grant_type=grant_type))
            return response

        transport = _CappedTransport(self._transport or httpx.HTTPTransport(), self._max_response_bytes)
        try:
            with self._oauth_client(transport) as oauth:
                oauth.register_compliance_hook("access_token_response", check)
                oauth.register_compliance_hook("refresh_token_response", check)
                call(oauth)
        except SpotifyError:
            raise
        except _BodyTooLarge:
            logger.warning("Spotify token endpoint (%s) sent more than %s bytes.", grant_type, self._max_response_bytes)
            raise SpotifyBadResponse("Spotify's token endpoint sent a response that is too large.") from None
        except httpx.TimeoutException as exc:
            logger.warning("Spotify token endpoint (%s) timed out (%s).", grant_type, type(exc).__name__)
            raise SpotifyUnavailable("Spotify's login service did not answer in time.") from None
        except httpx.DecodingError:
            logger.warning("Spotify token endpoint (%s) sent a body that could not be decoded.", grant_type)
            raise SpotifyBadResponse("Spotify's token endpoint sent a response that could not be decoded.") from None
        except httpx.RequestError as exc:
            logger.warning("Spotify token endpoint (%s) failed: %s.", grant_type, type(exc).__name__)
            raise SpotifyUnavailable("Could not reach Spotify's login service.") from None
        except (ValueError, TypeError, KeyError) as exc:
            # Authlib's own parsing after our check passed; should not happen, but must not escape untyped.
            logger.warning("Authlib could not handle a token answer (%s): %s.", grant_type, type(exc).__name__)
            raise SpotifyBadResponse("Spotify's token endpoint sent a response Earworm cannot read.") from None
        if not checked:
            raise SpotifyBadResponse("Spotify's token endpoint sent no usable answer.")
        return checked[0]

    def _check_token_response(self, response: httpx.Response, *, grant_type: str) -> TokenSet:
        """Map one token-endpoint answer to a `TokenSet` or a `SpotifyError` (SECURITY.md OA-7, FZ-2)."""
        status = response.status_code
        body = response.content
        try:
            data: object = parse_json_body(body, status=status)
        except SpotifyBadResponse:
            data = None
        error = data.get("error") if isinstance(data, dict) else None
        error_code = error if isinstance(error, str) else None
        failure = self._failure_for(status, error_code, response, data)
        if failure is not None:
            level = logging.ERROR if isinstance(failure, SpotifyInvalidClient) else logging.WARNING
            logger.log(
                level,
                "Spotify token endpoint (%s) answered %s (%s): %s",
                grant_type,
                status,
                type(failure).__name__,
                body_snippet(body),
            )
            raise failure
        if not isinstance(data, dict):
            logger.warning(
                "Spotify token endpoint (%s) answered %s with a body that is not a JSON object: %s",
                grant_type,
                status,
                body_snippet(body),
            )
            raise SpotifyBadResponse("Spotify's token endpoint sent a response Earworm cannot read.", status=status)
        return parse_model(TokenSet, data, status=status)

    def _failure_for(
        self, status: int, error_code: str | None, response: httpx.Response, data: object
    ) -> SpotifyError | None:
        if error_code == "invalid_grant":
            return SpotifyInvalidGrant(status=status)
        if error_code == "invalid_client" or status == 401:
            # RFC 6749 §5.2: a failed client authentication may come as 401 without a usable body.
            return SpotifyInvalidClient(status=status)
        if status == 429:
            now = datetime.now(UTC)
            error_obj = data.get("error") if isinstance(data, dict) else None
            reason = error_obj.get("reason") if isinstance(error_obj, dict) else None
            header = response.headers.get("Retry-After")
            if isinstance(reason, str) and reason.upper() == "QUOTA_EXCEEDED":
                wait = parse_retry_after(header, now=now, default=RETRY_AFTER_CAP, cap=QUOTA_RETRY_AFTER_CAP)
                return SpotifyQuotaExceeded(wait, resume_time(now, wait), status=status)
            return SpotifyRateLimited(parse_retry_after(header, now=now, cap=RETRY_AFTER_CAP), status=status)
        if status >= 500:
            return SpotifyUnavailable(
                f"Spotify's login service answered with a server error ({status}).", status=status
            )
        if isinstance(data, dict) and data.get("error") is not None:
            # A 200 with an error body lands here too (SECURITY.md FZ-2).
            safe_code = error_code if error_code and _OAUTH_ERROR_CODE.fullmatch(error_code) else None
            return SpotifyBadRequest(
                "Spotify's login service refused the request.", status=status, error_code=safe_code
            )
        if status != 200:
            if 400 <= status < 500:
                return SpotifyBadRequest(f"Spotify's login service refused the request ({status}).", status=status)
            return SpotifyBadResponse(
                f"Spotify's login service answered with an unexpected status ({status}).", status=status
            )
        return None
