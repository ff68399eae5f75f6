"""A slot of a subscriber's aiortc peer connection, as a :class:`~media_fleet.sfu.sink.Sink`.

Each slot of a subscribe connection is a send-only transceiver whose stock sender never
sends a packet: the sink writes the slot's packets itself and hands them to the
transceiver's transport, synchronously:

1. :class:`~media_fleet.rtp.header.SlotHeader` writes the packet in one ``struct.pack`` with
   the slot's SSRC and mid and the session's extension ids (made on the first packet after
   the sender started, when the transport's extension map has them);
2. :class:`~media_fleet.rtc.seams.SlotTransmitter` SRTP-protects it and sends it on the
   nominated ICE pair;
3. :class:`~media_fleet.rtp.history.PacketHistory` keeps the bytes for NACKs (video, which
   negotiates RTX), and :class:`~media_fleet.rtp.sender_report.SenderStatistics` counts
   them for the slot's true sender reports (:func:`~media_fleet.sfu.reports.install_sender_reports`).

The receiver's RTCP comes back through :func:`~media_fleet.rtc.seams.install_feedback_hook`
into :func:`~media_fleet.sfu.feedback.rtcp_feedback`: NACKs answered here with RTX
(through :func:`~media_fleet.rtc.seams.send_packet`), PLI/FIR and REMB to the room.
"""

from aiortc import RTCRtpTransceiver

from media_fleet.rtc import seams
from media_fleet.rtp.header import SlotHeader, extension_ids
from media_fleet.rtp.history import PacketHistory
from media_fleet.rtp.sender_report import SenderStatistics

from .feedback import Retransmitter, rtcp_feedback
from .reports import install_sender_reports
from .sink import PacketRefused, SendBatch, SinkFeedback

NegotiatedCodecs = dict[str, tuple[dict[str, int], dict[int, int]]]
"Per mid of a subscribe answer: payload type per codec, and RTX payload type per type."


class PeerConnectionSink:
    """The sink of one negotiated send-only slot transceiver.

    :param transceiver: the slot's transceiver, once the answer has been applied.
    :param negotiated: the answer's payload types per mid (negotiation's
        ``negotiated_payload_types``); the sender's own codec is added if missing.
    """

    batch: SendBatch | None = None
    "Each packet leaves at once (one ``sendto`` per packet)."

    def __init__(self, transceiver: RTCRtpTransceiver, negotiated: NegotiatedCodecs) -> None:
        parameters = seams.slot_parameters(transceiver)
        self.mid = parameters.mid
        self.ssrc = parameters.ssrc
        self.clock_rate = parameters.clock_rate
        payload_types, rtx_payload_types = negotiated.get(parameters.mid or "", ({}, {}))
        payload_types.setdefault(parameters.mime_type.lower(), parameters.payload_type)
        if parameters.rtx_payload_type is not None:
            rtx_payload_types.setdefault(parameters.payload_type, parameters.rtx_payload_type)
        self.payload_types = payload_types
        self.history: PacketHistory | None = None
        self._retransmitter: Retransmitter | None = None
        if parameters.rtx_payload_type is not None:
            self.history = PacketHistory(parameters.rtx_payload_type, parameters.rtx_ssrc)
            self._retransmitter = Retransmitter(self.history, rtx_payload_types)
        self.sender = transceiver.sender
        self._transmitter = seams.SlotTransmitter(self.sender)
        self._header: SlotHeader | None = None
        self.statistics = SenderStatistics(parameters.ssrc, parameters.clock_rate)
        install_sender_reports(self.sender, self.statistics)

    def attach(self, feedback: SinkFeedback) -> None:
        seams.install_feedback_hook(
            self.sender, rtcp_feedback(self._retransmitter, self._retransmit, feedback)
        )

    def detach(self) -> None:
        pass  # the room closes the whole peer connection

    def send(
        self,
        payload_type: int,
        marker: bool,
        sequence_number: int,
        timestamp: int,
        payload: bytes,
        abs_send_time: int,
        audio_level: tuple[bool, int] | None,
    ) -> bool:
        header = self._header or self._start_header()
        if header is None:
            return False
        data = header.write(
            payload_type, marker, sequence_number, timestamp, payload, abs_send_time, audio_level
        )
        try:
            sent = self._transmitter.send(data)
        except seams.SrtpError as error:
            raise PacketRefused from error
        if not sent:
            return False
        history = self.history
        if history is not None:
            history.add(sequence_number, data)
        self.statistics.on_sent(timestamp, len(payload))
        return True

    def _start_header(self) -> SlotHeader | None:
        """The slot's header writer, once its sender has started (None before)."""
        if not seams.sender_started(self.sender):
            return None
        extensions_map = seams.header_extensions_map(self.sender)
        self._header = SlotHeader(
            self.ssrc, self.mid, extensions_map, extension_ids(extensions_map)
        )
        return self._header

    async def _retransmit(self, data: bytes) -> bool:
        return await seams.send_packet(self.sender, data)
