// Forms: send each form once, and fill back in what was typed before a session ended.
// Loaded by base.html with `defer`; no inline script (the CSP allows scripts from 'self' only).
(function () {
  "use strict";

  var RE_ENABLE_AFTER_MS = 15000; // a form that led to a download leaves the page in place

  function submitButtons(form) {
    return form.querySelectorAll("button:not([type]), button[type=submit], input[type=submit]");
  }

  function release(form) {
    delete form.dataset.submitting;
    submitButtons(form).forEach(function (button) {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    });
  }

  // A second submit of the same form is ignored while the first is on its way. The buttons are
  // disabled after the browser has read the form, so the clicked button's value is still sent.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") {
      return;
    }
    if (form.dataset.submitting === "true") {
      event.preventDefault();
      return;
    }
    form.dataset.submitting = "true";
    window.setTimeout(function () {
      submitButtons(form).forEach(function (button) {
        button.disabled = true;
        button.setAttribute("aria-busy", "true");
      });
    }, 0);
    window.setTimeout(function () { release(form); }, RE_ENABLE_AFTER_MS);
  });

  // A page brought back by the Back button must be usable again.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      document.querySelectorAll("form[data-submitting]").forEach(release);
    }
  });

  function restoreForm() {
    var holder = document.getElementById("restored-form");
    if (!holder) {
      return;
    }
    var values;
    try {
      values = JSON.parse(holder.dataset.values || "{}");
    } catch (error) {
      return;
    }
    var action = holder.dataset.action;
    var form = Array.prototype.find.call(document.forms, function (candidate) {
      return candidate.method.toLowerCase() === "post" &&
        new URL(candidate.action, window.location.href).pathname === action;
    });
    if (!form) {
      return;
    }
    var skip = { csrf_token: true, form_token: true };
    var seen = {};
    Array.prototype.forEach.call(form.elements, function (element) {
      var name = element.name;
      if (!name || skip[name] || element.type === "password" || element.type === "file" ||
          element.type === "submit" || element.type === "button") {
        return;
      }
      var given = values[name] || [];
      if (element.type === "checkbox" || element.type === "radio") {
        element.checked = given.indexOf(element.value) !== -1;
      } else if (element.tagName === "SELECT") {
        Array.prototype.forEach.call(element.options, function (option) {
          option.selected = given.indexOf(option.value) !== -1;
        });
      } else if (Object.prototype.hasOwnProperty.call(values, name)) {
        var index = seen[name] || 0;
        element.value = given[index] !== undefined ? given[index] : "";
        seen[name] = index + 1;
      }
    });
    var first = form.querySelector("input:not([type=hidden]), select, textarea");
    if (first) {
      first.focus();
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", restoreForm);
  } else {
    restoreForm();
  }
}());
