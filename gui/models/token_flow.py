"""Asking for a Hugging Face token: prompt, check it with the Hub, store it in the
keyring, then carry on with what needed it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from core.hub.auth import save_token
from core.hub.client import HubClient
from core.hub.errors import HubError, KeyringUnavailableError
from gui.models.background_work import BackgroundWork
from gui.models.token_prompt import TokenPrompt
from gui.sentence import as_sentence

logger = logging.getLogger(__name__)


class TokenFlow(QObject):
    """One prompt at a time; ``token`` is the token in use (None: none).

    Signals:
        token_saved(str, str, bool): the token and its account, once checked; and
            whether the keyring kept it (False: used until the app closes).
    """

    token_saved = Signal(str, str, bool)

    def __init__(self, work: BackgroundWork, endpoint: str, window: QWidget) -> None:
        super().__init__(window)
        self._work = work
        self._endpoint = endpoint
        self._window = window
        self.token: str | None = None
        self.prompt: TokenPrompt | None = None

    def ask(self, reason: str, then: Callable[[], None]) -> TokenPrompt:
        """Show the prompt; ``then`` runs once a token was checked and stored."""
        if self.prompt is not None:
            self.prompt.close()
        prompt = TokenPrompt(reason, self._window)
        prompt.token_entered.connect(lambda token: self._work.spawn(self._check(token, then)))
        prompt.finished.connect(self._forget_prompt)
        self.prompt = prompt
        prompt.open()  # not exec(): a nested loop would stall the qasync loop
        return prompt

    def _forget_prompt(self) -> None:
        prompt, self.prompt = self.prompt, None
        if prompt is not None:
            prompt.deleteLater()

    async def _check(self, token: str, then: Callable[[], None]) -> None:
        prompt = self.prompt
        try:
            account = await self._work.run(HubClient(self._endpoint, token).whoami)
        except HubError as exc:
            if prompt is not None:
                prompt.show_error(as_sentence(str(exc)))
            return
        stored = True
        try:
            await self._work.run(save_token, token)
        except KeyringUnavailableError as exc:
            # A good token must not be refused because this system has no keyring
            # (a minimal desktop, a container): use it until the app closes.
            logger.info("token kept for this session only: %s", exc)
            stored = False
        self.token = token
        self.token_saved.emit(token, account, stored)
        if prompt is not None:
            prompt.accept()
        then()
