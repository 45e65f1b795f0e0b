"""Websocket for one consultation's chat page.

Protocol (JSON frames):
  client -> {"type": "auth", "token": "<patient token>"}      must come first; a wrong token, or none
                                                              within WEBSOCKET_AUTH_TIMEOUT_S, closes (4401)
  client -> {"type": "message.send", "text": "...", "client_id": "..."?}
  client -> {"type": "ping"}
  server -> {"type": "consultation.update", ...state...}   after auth and after every change
  server -> {"type": "message.queued", "id", "status", "client_id", "message"}
  server -> {"type": "error", "code", "message", "client_id"?}   the connection stays open
                                                              (codes: empty, too_long, invalid, closed,
                                                              rate_limited, bad_json, bad_frame, ...)
  server -> {"type": "pong"}
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from consult import security
from consult.models import Consultation
from consult.selectors.consultation import consultation_get_for_patient, consultation_state_get, message_serialize
from consult.services.messages import MessageRejected, message_create

CLOSE_UNAUTHENTICATED = 4401


def _frame_max_chars() -> int:
    # Room for JSON escaping of a maximal message (\uXXXX is 6 chars per character) plus envelope.
    return settings.MESSAGE_MAX_CHARS * 6 + 1024


@database_sync_to_async
def _consultation_authenticate(*, consultation_id: str, token: str) -> Consultation | None:
    return consultation_get_for_patient(consultation_id=consultation_id, token=token)


@database_sync_to_async
def _consultation_state(*, consultation: Consultation) -> dict[str, Any]:
    return consultation_state_get(consultation=consultation)


@database_sync_to_async
def _message_create(*, consultation: Consultation, text: Any) -> dict[str, Any]:
    message = message_create(consultation=consultation, text=text)
    return message_serialize(message=message)


@sync_to_async
def _message_limit_hit(*, consultation_id) -> float | None:
    return security.patient_message_limit_hit(consultation_id=consultation_id)


class ConsultationConsumer(AsyncJsonWebsocketConsumer):
    consultation: Consultation | None = None
    auth_deadline: asyncio.TimerHandle | None = None

    async def connect(self) -> None:
        self.consultation = None
        self.consultation_id = self.scope["url_route"]["kwargs"]["consultation_id"]
        # Accept first: the token arrives in the first frame, never in the URL (URLs end up in logs).
        await self.accept()
        # Idle unauthenticated sockets are closed so that they cannot pile up.
        self.auth_deadline = asyncio.get_running_loop().call_later(
            settings.WEBSOCKET_AUTH_TIMEOUT_S, lambda: asyncio.ensure_future(self.auth_expire())
        )

    async def auth_expire(self) -> None:
        if self.consultation is None:
            await self.error_send(code="auth_timeout", message="No auth frame received in time.")
            await self.close(code=CLOSE_UNAUTHENTICATED)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "auth_deadline", None) is not None:
            self.auth_deadline.cancel()
        if self.consultation is not None:
            await self.channel_layer.group_discard(self.consultation.group_name, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs) -> None:
        if text_data is None:
            await self.error_send(code="bad_frame", message="Send JSON text frames.")
            return
        if len(text_data) > _frame_max_chars():
            await self.error_send(
                code="too_long",
                message=f"The message is too long (the limit is {settings.MESSAGE_MAX_CHARS} characters).",
            )
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.error_send(code="bad_json", message="The frame is not valid JSON.")
            return
        if not isinstance(content, dict):
            await self.error_send(code="bad_frame", message="Send a JSON object with a 'type'.")
            return
        await self.receive_json(content)

    async def receive_json(self, content: dict[str, Any], **kwargs) -> None:
        frame_type = content.get("type")
        if frame_type == "ping":
            await self.send_json({"type": "pong"})
        elif frame_type == "auth":
            await self.auth_receive(content)
        elif self.consultation is None:
            await self.error_send(code="not_authenticated", message="Send an auth frame first.")
        elif frame_type == "message.send":
            await self.message_receive(content)
        else:
            await self.error_send(code="unknown_type", message=f"Unknown frame type: {str(frame_type)[:64]!r}.")

    async def auth_receive(self, content: dict[str, Any]) -> None:
        if self.consultation is not None:
            await self.send_json(await self.state_frame())
            return
        token = content.get("token")
        consultation = None
        if isinstance(token, str):
            consultation = await _consultation_authenticate(consultation_id=self.consultation_id, token=token)
        if consultation is None:
            # One answer for unknown consultations and wrong tokens alike.
            await self.error_send(code="auth_failed", message="This consultation link is not valid.")
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.consultation = consultation
        self.auth_deadline.cancel()
        await self.channel_layer.group_add(consultation.group_name, self.channel_name)
        await self.send_json(await self.state_frame())

    async def message_receive(self, content: dict[str, Any]) -> None:
        client_id = content.get("client_id")
        if not isinstance(client_id, (str, int)) or isinstance(client_id, bool) or len(str(client_id)) > 64:
            client_id = None
        retry_after = await _message_limit_hit(consultation_id=self.consultation.pk)
        if retry_after is not None:
            await self.error_send(
                code="rate_limited",
                message=f"Too many messages. Please wait {retry_after:.0f} seconds before sending another.",
                client_id=client_id,
            )
            return
        try:
            message = await _message_create(consultation=self.consultation, text=content.get("text"))
        except MessageRejected as rejected:
            await self.error_send(code=rejected.code, message=rejected.message, client_id=client_id)
            return
        await self.send_json(
            {
                "type": "message.queued",
                "id": message["id"],
                "status": message["status"],
                "client_id": client_id,
                "message": message,
            }
        )

    async def state_frame(self) -> dict[str, Any]:
        return {"type": "consultation.update", **await _consultation_state(consultation=self.consultation)}

    async def error_send(self, *, code: str, message: str, client_id: str | int | None = None) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if client_id is not None:
            frame["client_id"] = client_id
        await self.send_json(frame)

    # Channel layer events ----------------------------------------------------------------------------

    async def consultation_update(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "consultation.update", **event["state"]})
