// The support desk's live chat (desk/consumers.py says what each frame means). Loaded
// only by the chat's own pages: the visitor's (after they chose "Chat with us") and the
// agent's conversation page. The texts come translated from the page's data attributes.
(function () {
  "use strict";
  var root = document.getElementById("chat");
  if (!root) {
    return;
  }
  var side = root.dataset.side;
  var label = root.dataset;
  var log = document.getElementById("chat-log");
  var status = document.getElementById("chat-status");
  var typing = document.getElementById("chat-typing");
  var error = document.getElementById("chat-error");
  var form = document.getElementById("chat-form");
  var body = document.getElementById("chat-body");
  var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  var socket = new WebSocket(scheme + "//" + window.location.host + label.socket);
  var typingTimer = null;
  var lastTyping = 0;
  var sent = 0;
  var ended = false;

  var pending = [];

  function send(frame) {
    // What is done before the socket is open (a quick click) is sent once it is.
    if (socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(frame));
    } else if (socket.readyState === WebSocket.CONNECTING) {
      pending.push(frame);
    }
  }

  function add(author, text, direction) {
    var item = document.createElement("li");
    item.className = "chat-" + direction;
    var who = document.createElement("strong");
    who.textContent = author;
    var what = document.createElement("span");
    what.textContent = text;
    item.append(who, " ", what);
    log.append(item);
    item.scrollIntoView({ block: "nearest" });
  }

  function mine(direction) {
    return (side === "visitor" && direction === "in") || (side === "agent" && direction === "out");
  }

  function end() {
    ended = true;
    status.textContent = label.ended;
    ["chat-form", "chat-end-form", "chat-end", "chat-take", "chat-canned-row"].forEach(function (id) {
      var element = document.getElementById(id);
      if (element) {
        element.hidden = true;
      }
    });
    var after = document.getElementById("chat-after");
    if (after) {
      after.hidden = false;
    }
  }

  socket.addEventListener("message", function (event) {
    var frame = JSON.parse(event.data);
    switch (frame.type) {
      case "message":
        add(mine(frame.direction) ? label.you : frame.author, frame.body, frame.direction);
        if (!mine(frame.direction)) {
          typing.hidden = true;
        }
        break;
      case "typing":
        if (frame.who !== side) {
          typing.hidden = false;
          window.clearTimeout(typingTimer);
          typingTimer = window.setTimeout(function () { typing.hidden = true; }, 4000);
        }
        break;
      case "presence":
        if (frame.who !== side && !ended) {
          status.textContent = frame.online ? label.online : label.away;
        }
        break;
      case "taken":
        status.textContent = label.taken.replace("{agent}", frame.agent);
        var take = document.getElementById("chat-take");
        if (take) {
          take.hidden = true;
        }
        break;
      case "ended":
        end();
        break;
      case "canned":
        body.value = frame.text;
        body.focus();
        break;
      case "refused":
        error.textContent = frame.error;
        error.hidden = false;
        break;
    }
  });
  socket.addEventListener("open", function () {
    pending.splice(0).forEach(send);
    if (side === "visitor" && !ended) {
      status.textContent = label.online;
    }
  });
  socket.addEventListener("close", function () {
    if (!ended) {
      status.textContent = label.closed;
    }
  });

  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = body.value.trim();
      if (!text) {
        return;
      }
      error.hidden = true;
      sent += 1;
      send({ type: "message", body: text, ref: sent });
      body.value = "";
    });
    body.addEventListener("input", function () {
      var now = Date.now();
      if (now - lastTyping > 1500) {
        lastTyping = now;
        send({ type: "typing" });
      }
    });
  }

  var endForm = document.getElementById("chat-end-form");
  if (endForm) {
    endForm.addEventListener("submit", function (event) {
      event.preventDefault();
      send({ type: "end", transcript: document.getElementById("chat-transcript").checked });
    });
  }

  if (side === "agent") {
    var takeButton = document.getElementById("chat-take");
    if (takeButton) {
      takeButton.addEventListener("click", function () { send({ type: "take" }); });
    }
    var endButton = document.getElementById("chat-end");
    if (endButton) {
      endButton.addEventListener("click", function () { send({ type: "end" }); });
    }
    var canned = document.getElementById("chat-canned");
    if (canned) {
      canned.addEventListener("change", function () {
        if (canned.value) {
          send({ type: "canned", id: parseInt(canned.value, 10) });
          canned.value = "";
        }
      });
    }
    // While this page is open its agent is online for chat.
    window.setInterval(function () { send({ type: "ping" }); }, 20000);
  }
})();
