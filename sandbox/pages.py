"""HTML pages of the sandbox: the portal login of the OAuth flow, an error page and the control panel."""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from werkzeug.wrappers import Response

from .config import SandboxConfig

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:1.6rem}
form.card,div.card{border:1px solid #ccc;border-radius:6px;padding:1rem;margin:.6rem 0}
label{display:inline-block;margin:.2rem .8rem .2rem 0}
input,select{padding:.3rem}
button{padding:.35rem .9rem;margin-top:.4rem;cursor:pointer}
.error{color:#b00020;font-weight:600} .hint{color:#666} .ok{color:#176f2c}
table{border-collapse:collapse;width:100%;font-size:.85rem}
td,th{border-bottom:1px solid #ddd;padding:.25rem .4rem;text-align:left;vertical-align:top}
code{background:#f3f3f3;padding:0 .2rem}
"""


def _page(title: str, body: str, status: int = 200) -> Response:
    html = (
        "<!doctype html><html lang='ru'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )
    return Response(html, status=status, content_type="text/html; charset=utf-8")


def login_page(params: dict[str, str], config: SandboxConfig, error: str | None = None) -> Response:
    hidden = "".join(
        f"<input type='hidden' name='{escape(k)}' value='{escape(v)}'>" for k, v in params.items() if v
    )
    error_html = f"<p class='error'>{escape(error)}</p>" if error else ""
    hint = (
        ""
        if config.exposed  # reachable from outside: no password on the page
        else f"""<p class='hint'>Демо: логин <code>{escape(config.login)}</code>,
пароль <code>{escape(config.password)}</code>. Demo login hint shown because this is a sandbox.</p>"""
    )
    body = f"""
<h1>МТТ Бизнес — вход в личный кабинет <span class='hint'>(MTT sandbox portal login)</span></h1>
<p>Приложение <code>{escape(params.get("client_id", ""))}</code> запрашивает доступ к Открытому API.
<span class='hint'>The application asks for access to the Open API.</span></p>
{error_html}
<form class='card' method='post' action='/oauth/authorize'>
  {hidden}
  <label>Логин / Login <input name='login' autocomplete='username' autofocus></label>
  <label>Пароль / Password <input name='password' type='password' autocomplete='current-password'></label>
  <div><button type='submit'>Войти / Sign in</button></div>
</form>
{hint}
"""
    return _page("МТТ Бизнес — вход", body)


def error_page(message: str, status: int = 400) -> Response:
    body = f"<h1>Ошибка авторизации / Authorization error</h1><p class='error'>{escape(message)}</p>"
    return _page("Ошибка", body, status=status)


def _options(items: list[tuple[str, str]], selected: str | None = None) -> str:
    return "".join(
        f"<option value='{escape(v)}'{' selected' if v == selected else ''}>{escape(label)}</option>"
        for v, label in items
    )


def _script_json(data: Any) -> str:
    # Logged payloads are caller-controlled: keep "</script>" inside them from closing the tag.
    return json.dumps(data, ensure_ascii=False).replace("</", "<\\/")


def _masked(url: str | None) -> str | None:
    """The notify URL's token is the CRM's secret: never on a page (``/mtt/abc…xyz/`` → ``/mtt/••••/``)."""
    if not url:
        return url
    parts = urlsplit(url)
    path = re.sub(r"/mtt/[^/]+", "/mtt/••••", parts.path)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _number_label(number: dict[str, Any]) -> str:
    """An external number with its type when the directory gives one ("78005560251 (8800)"); a number
    without a type alone (it read "74996497803 (None)")."""
    kind = number.get("type")
    return f"{number['number']} ({kind})" if kind else str(number["number"])


def index_page(config: SandboxConfig, snapshot: dict[str, Any], message: str | None = None) -> Response:
    directory = config.directory
    workplaces = [
        (str(w["workplace"]), f"{w['workplace']} — {w.get('name', '')}") for w in directory.workplaces
    ]
    numbers = [(str(n["number"]), _number_label(n)) for n in directory.numbers]
    notify_url = _masked(snapshot.get("notify_url"))
    notify_html = (
        f"<code>{escape(notify_url)}</code>"
        if notify_url
        else "<span class='error'>не задан — авторизуйте CRM или укажите notify_url (not set)</span>"
    )
    msg_html = f"<p class='ok'>{escape(message)}</p>" if message else ""

    def scenario_form(scenario: str, title: str, with_caller: bool = True, with_number: bool = True) -> str:
        caller = (
            "<label>Номер клиента / Client number <input name='caller' value='+79219462761'></label>"
            if with_caller
            else "<label>Call-ID <input name='call_id' placeholder='(new)'></label>"
        )
        number = (
            "<label>Внешний номер / External number "
            f"<select name='external_number'>{_options(numbers)}</select></label>"
            if with_number
            else ""
        )
        return f"""
<form class='card' method='post' action='/_sandbox/scenario'>
  <strong>{escape(title)}</strong> <code>{scenario}</code><br>
  <input type='hidden' name='scenario' value='{scenario}'>
  {caller} {number}
  <label>Сотрудник / Workplace <select name='workplace'>{_options(workplaces)}</select></label>
  <label><input type='checkbox' name='duplicate' value='1'> дубли / duplicate (§6.5)</label>
  <label><input type='checkbox' name='lose_finished' value='1'> без finished / finished never comes</label>
  <div><button type='submit'>Запустить / Run</button></div>
</form>"""

    forms = "".join(
        [
            scenario_form("incoming_answered", "Входящий, отвечен / Incoming, answered"),
            scenario_form("incoming_missed", "Входящий, пропущен / Incoming, missed"),
            scenario_form("incoming_ip_sip", "Входящий на IP SIP: только trying и finished (§6.1)"),
            scenario_form("click_to_call", "Исходящий click-to-call / Outgoing click-to-call"),
            scenario_form("recorded", "Только запись / Recording only", with_caller=False, with_number=False),
        ]
    )
    parking = ", ".join(f"{k}: {'on' if v else 'off'}" for k, v in snapshot.get("parking", {}).items()) or "—"
    body = f"""
<h1>MTT PBX sandbox — песочница ВАТС МТТ</h1>
{msg_html}
<div class='card'>
  URL для нотификаций / Notify URL: {notify_html}<br>
  OAuth client_id: <code>{escape(config.client_id)}</code> ·
  access token {config.access_token_lifetime}s · rate limit {config.rate_limit}/s ·
  step delay {config.step_delay}s · parking: {escape(parking)}
</div>
<form class='card' method='post' action='/_sandbox/mode'>
  Режим / Mode: <strong>{escape(config.mode)}</strong>
  <span class='hint'>({escape(", ".join(sorted(config.quirks)) or "no quirks")})</span>
  <button name='mode' value='friendly'>friendly</button>
  <button name='mode' value='realistic'>realistic — как позволяет руководство / as the guide allows</button>
</form>
<h2>Сценарии / Scenarios</h2>
{forms}
<h2>Отправленные нотификации / Notifications sent</h2>
<table id='notifications'><thead><tr><th>time</th><th>call</th><th>state</th><th>status</th></tr></thead>
<tbody></tbody></table>
<h2>Запросы к API / API requests received</h2>
<table id='requests'><thead>
<tr><th>time</th><th>method</th><th>path</th><th>status</th><th>json</th></tr></thead>
<tbody></tbody></table>
<script>
const initial = {_script_json({"n": snapshot.get("notifications", []), "r": snapshot.get("requests", [])})};
function cell(v) {{ const td = document.createElement('td'); td.textContent = v ?? ''; return td; }}
function fill(id, rows, cols) {{
  const body = document.querySelector('#' + id + ' tbody'); body.replaceChildren();
  rows.slice(-30).reverse().forEach(r => {{
    const tr = document.createElement('tr');
    cols(r).forEach(v => tr.appendChild(cell(v)));
    body.appendChild(tr);
  }});
}}
function render(n, r) {{
  fill('notifications', n, x => [x.time, x.call_id, x.state, x.status ?? x.error]);
  fill('requests', r, x => [x.time, x.method, x.path, x.status, JSON.stringify(x.json)]);
}}
async function refresh() {{
  try {{
    const [n, r] = await Promise.all([fetch('/_sandbox/notifications'), fetch('/_sandbox/requests')]);
    render(await n.json(), await r.json());
  }} catch (e) {{ /* the sandbox was stopped */ }}
}}
render(initial.n, initial.r); setInterval(refresh, 2000);
</script>
"""
    return _page("MTT sandbox", body)
