// The chat rooms of the demo, over the manager's topics: a room `x` is the topic `room:x`. Everyone starts in the
// lobby; protocol clients join and leave other rooms themselves (client.subscribe / unsubscribe), which the
// `authorizeSubscribe` hook below allows for `room:` names. Who is online in a room is sent to its members as a
// volatile `presence` publication whenever it changes (a member joins, leaves, drops, comes back or takes a nick).

/** The rooms the page lists; any other `room:<name>` can be joined by name. */
export const ROOMS = ['lobby', 'random', 'dev'];
const PREFIX = 'room:';
const ROOM_NAME = /^[a-z0-9-]{1,24}$/;

/** Hook for `new WebSocketConnectionManager(config, hooks)`: clients may subscribe to `room:<name>` topics only. */
export const authorizeSubscribe = ({ topic }) =>
  topic.startsWith(PREFIX) && ROOM_NAME.test(topic.slice(PREFIX.length));

/** Wire the chat onto a manager made with {@link authorizeSubscribe}. */
export function serveRooms(manager) {
  const names = new Map();
  const nameOf = (id) => names.get(id) ?? `guest-${id.slice(0, 4)}`;
  const roomsOf = (id) => manager.getClientTopics(id).filter((t) => t.startsWith(PREFIX));

  // Presence changes come in bursts (a session that ends leaves all its rooms): send each room's list once per turn.
  const dirty = new Set();
  const touch = (topic) => {
    if (dirty.size === 0) queueMicrotask(flushPresence);
    dirty.add(topic);
  };
  function flushPresence() {
    for (const topic of dirty) {
      const members = manager
        .getTopicMembers(topic)
        .map((id) => ({ id, name: nameOf(id), online: manager.isConnected(id) }));
      const room = topic.slice(PREFIX.length);
      manager.publish(topic, { type: 'presence', room, members }, { volatile: true });
    }
    dirty.clear();
  }

  manager.on('join', ({ topic }) => topic.startsWith(PREFIX) && touch(topic));
  manager.on('leave', ({ topic }) => topic.startsWith(PREFIX) && touch(topic));

  manager.on('connect', ({ clientId, resume, replayed }) => {
    if (resume === 'resumed') {
      // After the replay (written with the welcome): how many missed messages it held. The page counts them per
      // room up to this note. A resumed session keeps its rooms (and its name): it is only back online.
      manager.sendToClient(clientId, { type: 'replayed', count: replayed }, { volatile: true });
      return roomsOf(clientId).forEach(touch);
    }
    names.set(clientId, nameOf(clientId));
    manager.sendToClient(clientId, { type: 'welcome', you: nameOf(clientId), rooms: ROOMS });
    manager.join(clientId, `${PREFIX}lobby`);
  });
  manager.on('disconnect', ({ clientId, reason, sessionRetained }) => {
    if (sessionRetained)
      roomsOf(clientId).forEach(touch); // away: it may resume
    else if (reason !== 'replaced' && !manager.isConnected(clientId)) names.delete(clientId); // a plain socket
  });
  manager.on('session-end', ({ clientId }) => {
    // Its rooms are left already (`leave` events, reason 'session-end'); a replacing session keeps the name.
    if (!manager.isConnected(clientId)) names.delete(clientId);
  });

  manager.on('message', ({ clientId, data: received }) => {
    // The page sends { type: 'say', room, text, cid }; a plain socket sends that as JSON text, or bare text for the lobby.
    const data = typeof received === 'string' && received.startsWith('{') ? parseJson(received) : received;
    const text = typeof data === 'string' ? data : typeof data?.text === 'string' ? data.text : '';
    const room = typeof data?.room === 'string' ? data.room : 'lobby';
    if (text.length === 0) return;
    if (text.startsWith('/nick ')) {
      names.set(clientId, text.slice(6, 38).trim() || nameOf(clientId));
      manager.sendToClient(clientId, { type: 'name', you: nameOf(clientId) });
      return roomsOf(clientId).forEach(touch);
    }
    const topic = PREFIX + room;
    if (!roomsOf(clientId).includes(topic)) {
      return manager.sendToClient(clientId, {
        type: 'error',
        text: `join #${room.slice(0, 24)} to talk there`,
      });
    }
    const chat = {
      type: 'chat',
      room,
      from: nameOf(clientId),
      fromId: clientId,
      text: text.slice(0, 2000),
      at: Date.now(),
    };
    // The page's own id for the message, so it can show the echo in place of its pending line.
    if (typeof data?.cid === 'string' && data.cid.length <= 64) chat.cid = data.cid;
    manager.publish(topic, chat);
  });
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
