"""The Redis pub/sub channel layer, plus a signal to every local socket when its subscription was broken.

``channels_redis``' pub/sub layer survives a Redis restart by itself: redis-py reconnects and
subscribes again. What it cannot do is tell anyone that the group messages published meanwhile
are gone, and a websocket that stayed open never asks for them: the customer would not see an
agent's reply (or the confirmation of their own message) until they reload. So once the
subscription works again, this layer puts a ``layer.reconnected`` event in each of its channels;
the consumers answer it by closing with 1012 (service restart), and the page reconnects and
resyncs from its last sequence number, as after any other drop. Messages themselves are never at
risk: they are stored before they are broadcast.
"""

from __future__ import annotations

import asyncio
import logging

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.utils import _wrap_close

logger = logging.getLogger(__name__)

RECONNECTED = {"type": "layer.reconnected"}


class _Shard(RedisSingleShardConnection):
    async def _do_receiving(self) -> None:
        broken = False
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                    if broken:
                        broken = False
                        self._announce_reconnect()
                    self._receive_message(message)
                else:
                    await asyncio.sleep(0.1)
            except (TimeoutError, asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as exc:
                if not broken:
                    logger.warning("channel layer: Redis subscription lost (%s); reconnecting", exc)
                broken = True
                await asyncio.sleep(1)

    def _announce_reconnect(self) -> None:
        layer = self.channel_layer
        event = layer.channel_layer.serialize(RECONNECTED)
        names = list(layer.channels)  # a socket's groups may live on another shard than its channel
        logger.warning("channel layer: Redis subscription restored; asking %s sockets to resync", len(names))
        for name in names:
            layer.channels[name].put_nowait(event)


class _LoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._shards = [_Shard(shard.host, self) for shard in self._shards]


class ResyncingPubSubChannelLayer(RedisPubSubChannelLayer):
    """``RedisPubSubChannelLayer`` whose consumers hear ``layer.reconnected`` after a Redis outage."""

    def _get_layer(self):
        loop = asyncio.get_running_loop()
        try:
            return self._layers[loop]
        except KeyError:
            layer = _LoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
            return layer
