// The desk's queue page: chats waiting for an agent appear and leave live, and while the
// page is open its agent counts as online for chat (desk/consumers.py, AgentQueue).
(function () {
  "use strict";
  var root = document.getElementById("chat-queue");
  if (!root) {
    return;
  }
  var list = document.getElementById("chat-waiting");
  var none = document.getElementById("chat-none");
  var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  var socket = new WebSocket(scheme + "//" + window.location.host + root.dataset.socket);

  var status = document.getElementById("chat-queue-status");
  socket.addEventListener("open", function () { status.textContent = status.dataset.online; });
  socket.addEventListener("close", function () { status.textContent = status.dataset.closed; });

  function refresh() {
    none.hidden = list.children.length > 0;
  }

  socket.addEventListener("message", function (event) {
    var frame = JSON.parse(event.data);
    if (frame.type === "waiting") {
      var item = document.createElement("li");
      item.dataset.id = String(frame.id);
      var link = document.createElement("a");
      link.href = root.dataset.conversation.replace("0", String(frame.id));
      link.textContent = "#" + frame.id + " " + frame.name + ": " + frame.subject;
      item.append(link);
      list.append(item);
    } else if (frame.type === "taken" || frame.type === "ended") {
      var gone = list.querySelector('li[data-id="' + frame.id + '"]');
      if (gone) {
        gone.remove();
      }
    }
    refresh();
  });
  window.setInterval(function () {
    if (socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "ping" }));
    }
  }, 20000);
})();
