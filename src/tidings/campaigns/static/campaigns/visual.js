/* The visual campaign editor: GrapesJS with its MJML preset, served by Tidings itself.

   Nothing loads from another site: the icon font (cssIcons) is Font Awesome as
   Tidings serves it (frontend/editor/vendor), no canvas styles or scripts, no web fonts (fonts: {}), and the blocks use Tidings's own images. The page
   gives the design (data-design), the images of the media library (data-assets) and the
   personalisation tags (data-tags) as JSON script blocks; Save posts the editor's
   project and its MJML, and the server compiles and validates the MJML (mjml.py). */
(function () {
  "use strict";

  function data(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  var root = document.getElementById("visual-editor");
  if (!root || !window.grapesjs) { return; }
  var design = data("visual-design") || {};
  var assets = data("visual-assets") || [];
  var tags = data("visual-tags") || [];
  var texts = data("visual-texts") || {};
  var stat = root.getAttribute("data-static");
  var status = document.getElementById("visual-status");

  var mjmlPlugin = window["grapesjs-mjml"];
  if (mjmlPlugin && mjmlPlugin["default"]) { mjmlPlugin = mjmlPlugin["default"]; }

  var starter = root.getAttribute("data-starter");

  var options = {};
  options.blocks = ["mj-1-column", "mj-2-columns", "mj-3-columns", "mj-text", "mj-button", "mj-divider", "mj-spacer"];
  options.fonts = {};
  options.imagePlaceholderSrc = stat + "placeholder.png";
  options.columnsPadding = "10px 0";

  var config = {
    container: "#gjs",
    height: "100%",
    storageManager: false,
    // GrapesJS reports usage to its makers' server unless told not to: nothing of a
    // customer's page leaves Tidings (the page's policy would block it anyway).
    telemetry: false,
    // The style manager's and panels' icons: Font Awesome, Tidings's own copy (without
    // it they render as empty squares; GrapesJS's default is a CDN).
    cssIcons: stat + "vendor/font-awesome/css/font-awesome.min.css",
    canvas: { styles: [], scripts: [] },
    assetManager: { assets: assets, upload: false, embedAsBase64: false },
    plugins: [mjmlPlugin],
    pluginsOpts: {}
  };
  config.pluginsOpts[mjmlPlugin] = options;
  if (design.project) {
    config.projectData = design.project;
  } else {
    config.components = design.mjml || starter;
  }
  var editor = window.grapesjs.init(config);
  window.tidingsEditor = editor;

  function social(name, label) {
    return '<mj-social-element name="' + name + '" src="' + stat + "social/" + name + '.png" href="https://example.com/' + name + '">' + label + "</mj-social-element>";
  }
  var blocks = editor.Blocks;
  blocks.add("tidings-image", {
    label: texts.image, category: "Tidings",
    media: '<svg viewBox="0 0 24 24"><path fill="currentColor" d="M21 19V5a2 2 0 0 0-2-2H5a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h14a2 2 0 0 0 2-2M8.5 13.5l2.5 3 3.5-4.5 4.5 6H5l3.5-4.5Z"/></svg>',
    content: '<mj-image src="' + stat + 'placeholder.png" alt="" width="560px"></mj-image>',
    activate: true
  });
  blocks.add("tidings-social", {
    label: texts.social, category: "Tidings",
    media: '<svg viewBox="0 0 24 24"><circle cx="6" cy="12" r="3" fill="currentColor"/><circle cx="18" cy="6" r="3" fill="currentColor"/><circle cx="18" cy="18" r="3" fill="currentColor"/><path d="M6 12 18 6M6 12l12 6" stroke="currentColor" stroke-width="1.5"/></svg>',
    content: '<mj-social font-size="14px" icon-size="24px" mode="horizontal">' + social("facebook", "Facebook") + social("linkedin", "LinkedIn") + social("instagram", "Instagram") + "</mj-social>"
  });
  blocks.add("tidings-footer", {
    label: texts.footer, category: "Tidings",
    media: '<svg viewBox="0 0 24 24"><path fill="currentColor" d="M3 15h18v2H3zm0 4h12v2H3z"/></svg>',
    content: '<mj-section><mj-column><mj-text font-size="13px" color="#4a5161" align="center" line-height="1.5">' + texts.footerText +
      '<br><a href="{{ unsubscribe_url }}" style="color:#4a5161">' + texts.unsubscribe + '</a> · <a href="{{ preferences_url }}" style="color:#4a5161">' + texts.preferences +
      "</a><br>{{ campaign.postal_address }}</mj-text></mj-column></mj-section>"
  });

  // Personalisation tags, from a menu: in the text toolbar while text is edited (at the
  // cursor), and in the page's toolbar (at the cursor, else at the end of the selected
  // text block).
  function escapeAttr(text) {
    return text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
  }
  var choices = '<option value="">' + escapeAttr(texts.insertTag) + "</option>" + tags.map(function (t) {
    return '<option value="' + escapeAttr(t.tag) + '">' + escapeAttr(t.label) + "</option>";
  }).join("");
  editor.RichTextEditor.add("tidings-tags", {
    icon: '<select class="gjs-field" aria-label="' + escapeAttr(texts.insertTag) + '">' + choices + "</select>",
    event: "change",
    result: function (rte, action) {
      var value = action.btn.firstChild.value;
      if (value) { rte.insertHTML(value); }
    },
    update: function (rte, action) { action.btn.firstChild.value = ""; }
  });

  var menu = document.getElementById("visual-tag");
  menu.addEventListener("change", function () {
    var tag = menu.value;
    menu.value = "";
    if (!tag) { return; }
    var editing = editor.getEditing && editor.getEditing();
    var view = editing && editing.getView && editing.getView();
    if (view && view.activeRte && view.activeRte.insertHTML) {
      view.activeRte.insertHTML(tag);
      return;
    }
    var selected = editor.getSelected();
    if (selected && selected.get("type") === "mj-text") {
      selected.components().add({ type: "textnode", content: " " + tag });
      say(texts.tagAdded);
    } else {
      say(texts.chooseText);
    }
  });

  function say(text) { status.textContent = text; }

  document.getElementById("visual-undo").addEventListener("click", function () { editor.UndoManager.undo(); });
  document.getElementById("visual-redo").addEventListener("click", function () { editor.UndoManager.redo(); });
  document.querySelectorAll("[data-device]").forEach(function (button) {
    button.addEventListener("click", function () {
      // The widest device is the desktop, the narrowest the phone.
      var devices = editor.Devices.getAll().models.slice().sort(function (a, b) {
        return (parseInt(a.get("width"), 10) || 100000) - (parseInt(b.get("width"), 10) || 100000);
      });
      var wanted = button.getAttribute("data-device") === "phone" ? devices[0] : devices[devices.length - 1];
      editor.setDevice(wanted.id);
      document.querySelectorAll("[data-device]").forEach(function (b) { b.setAttribute("aria-pressed", String(b === button)); });
    });
  });

  var form = document.getElementById("visual-save");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    say(texts.saving);
    var body = JSON.stringify({ project: editor.getProjectData(), mjml: editor.getHtml() });
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value },
      body: body
    }).then(function (response) {
      return response.json().then(function (answer) { return { ok: response.ok, answer: answer }; });
    }).then(function (result) {
      if (result.ok) {
        say(result.answer.message);
        document.getElementById("visual-preview").hidden = false;
      } else {
        say(result.answer.error);
      }
    }, function () { say(texts.failed); });
  });
  // GrapesJS's own panel buttons get words as well as icons (a word says more than a
  // pictogram to a newcomer), and the blocks show first.
  var buttonNames = texts.buttons || {};
  function relabel() {
    editor.Panels.getPanels().forEach(function (panel) {
      panel.get("buttons").forEach(function (button) {
        var name = buttonNames[button.id];
        var drawn = /<svg/.test(button.get("label") || "");
        if (name && !drawn) {
          button.set({ className: "tdg-panel-button", label: name, attributes: { title: name } });
        }
      });
    });
  }
  editor.on("load", function () {
    relabel();
    // The canvas is a frame: named, for those who hear the page; the panels' scrolling
    // container can be reached from the keyboard.
    var frame = document.querySelector("#gjs iframe");
    if (frame) { frame.setAttribute("title", texts.canvas || ""); }
    var views = document.querySelector(".gjs-pn-views-container");
    if (views) { views.setAttribute("tabindex", "0"); }
    editor.runCommand("open-blocks");
    var blocksButton = editor.Panels.getButton("views", "open-blocks");
    if (blocksButton) { blocksButton.set("active", true); }
    root.setAttribute("data-ready", "true");
  });
})();
