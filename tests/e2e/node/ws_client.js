// ws_client.js -- MQTT.js over WebSocket for test_websocket.py: subscribes,
// publishes to itself at QoS 1 (a small and a 100000-byte message), prints
// "got TOPIC PAYLOAD|LENGTH" per message and exits 0, or exits 1 on an error
// or after 20 s.
'use strict';
const mqtt = require('mqtt');

const url = process.argv[2];
const c = mqtt.connect(url, { clientId: 'mqttjs-e2e', protocolVersion: 4 });
const timer = setTimeout(() => { console.log('timeout'); process.exit(1); },
                         20000);
let n = 0;
c.on('connect', () => {
  c.subscribe('js/#', { qos: 1 }, (err) => {
    if (err) { console.log('subscribe error', err.message); process.exit(1); }
    c.publish('js/t', 'hello from MQTT.js', { qos: 1 });
    c.publish('js/big', Buffer.alloc(100000, 7), { qos: 1 });
  });
});
c.on('message', (topic, msg) => {
  console.log('got', topic, topic === 'js/big' ? msg.length : msg.toString());
  if (++n === 2) {
    clearTimeout(timer);
    // MQTT.js acknowledges a message after this handler returns: ending
    // here would send DISCONNECT before the PUBACK, and the broker, which
    // closes on DISCONNECT, would make that write fail (EPIPE).
    setImmediate(() => c.end(false, () => process.exit(0)));
  }
});
c.on('error', (e) => { console.log('error', e.message); process.exit(1); });
