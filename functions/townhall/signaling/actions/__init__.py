"""Every signaling action, one module per area: presence, chat, moderation, media, polls, Q&A
and the whiteboard. Each action is a plain function `(ActionContext, Caller, Request) -> reply
data`; `townhall.signaling.table` names them all."""
