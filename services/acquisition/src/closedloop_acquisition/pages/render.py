"""The H5 landing page as HTML, rendered from the page's form schema (pure, no transport).

Everything a tenant or a visitor wrote (title, labels, consent wording, link parameters) is
escaped; data for the script travels as JSON made safe for a <script> element. The page loads
nothing from elsewhere: its style and script are inline, allowed by a per-response CSP nonce.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any

# What the page sends with the form besides the values (query parameters of the link).
_INPUT_TYPES = {"text": "text", "name": "text", "phone": "tel", "email": "email"}
_AUTOCOMPLETE = {"name": "name", "phone": "tel", "email": "email"}


@dataclass(frozen=True)
class PageView:
    page_id: str
    title: str
    fields: list[dict[str, Any]]
    # Sent with the submission: channel_id, ref, parameters, and openid/unionid hints.
    extras: Mapping[str, Any] = field(default_factory=dict)
    # The visitor signed in through WeChat (OAuth): identities come from the session cookie.
    signed_in: bool = False


def content_security_policy(nonce: str) -> str:
    return (
        "default-src 'none'; "
        f"style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
        "connect-src 'self'; form-action 'self'; img-src 'self' data:; "
        "base-uri 'none'; frame-ancestors 'none'"
    )


def script_json(value: Any) -> str:
    """JSON that cannot end or confuse the <script> element it sits in."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _field_html(f: Mapping[str, Any]) -> str:
    name = str(f["name"])
    kind = str(f["type"])
    required = bool(f.get("required"))
    max_length = int(f.get("max_length") or 500)
    ident = f"f-{escape(name)}"
    error = f'<p class="err" id="{ident}-err" role="alert" hidden></p>'
    req = " required" if required else ""
    if kind == "consent":
        wording = escape(str(f.get("consent_wording", "")))
        return (
            f'<div class="field consent" data-field="{escape(name)}">'
            f'<label><input type="checkbox" id="{ident}" name="{escape(name)}" value="true"{req}'
            f' aria-describedby="{ident}-err"> <span>{wording}</span></label>{error}</div>'
        )
    label = escape(str(f.get("label") or name))
    star = ' <span class="req" aria-hidden="true">*</span>' if required else ""
    extra = ""
    if kind in _AUTOCOMPLETE:
        extra += f' autocomplete="{_AUTOCOMPLETE[kind]}"'
    if kind == "phone":
        extra += ' inputmode="tel"'
    return (
        f'<div class="field" data-field="{escape(name)}">'
        f'<label for="{ident}">{label}{star}</label>'
        f'<input type="{_INPUT_TYPES.get(kind, "text")}" id="{ident}" name="{escape(name)}"'
        f' maxlength="{max_length}"{req}{extra} aria-describedby="{ident}-err">{error}</div>'
    )


_STYLE = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 -apple-system,"PingFang SC","Helvetica Neue",Arial,sans-serif;
background:#f4f5f7;color:#1c1f23}
main{max-width:480px;margin:0 auto;padding:20px 16px 40px}
h1{font-size:22px;margin:8px 0 20px}
.field{margin-bottom:16px}
label{display:block;font-weight:600;margin-bottom:6px}
.consent label{font-weight:400;display:flex;gap:8px;align-items:flex-start}
.consent input{margin-top:4px;width:20px;height:20px;flex:none}
input[type=text],input[type=tel],input[type=email]{width:100%;padding:12px;font-size:16px;
border:1px solid #c9cdd4;border-radius:8px;background:#fff}
input:focus{outline:2px solid #07c160;border-color:#07c160}
.req{color:#d93026}
.err{color:#d93026;font-size:14px;margin:4px 0 0}
button{width:100%;padding:14px;font-size:17px;border:0;border-radius:8px;background:#07c160;
color:#fff;font-weight:600}
button[disabled]{opacity:.6}
#thanks{text-align:center;padding:40px 0}
#thanks h2{font-size:22px}
"""

_SCRIPT = """
(function(){
var cfg=JSON.parse(document.getElementById('cfg').textContent);
var form=document.getElementById('lead-form');
var general=document.getElementById('form-err');
function show(el,msg){el.textContent=msg;el.hidden=!msg;}
function fieldErr(name){return document.getElementById('f-'+name+'-err');}
function clear(){
  show(general,'');
  form.querySelectorAll('.err').forEach(function(e){show(e,'');});
}
function check(){
  var ok=true;
  form.querySelectorAll('input').forEach(function(input){
    var msg='';
    if(input.type==='checkbox'){if(input.required&&!input.checked){msg=cfg.text.consent;}}
    else if(input.required&&!input.value.trim()){msg=cfg.text.required;}
    else if(input.value.trim()&&input.type==='tel'&&!/^[+0-9 ()-]{5,20}$/.test(input.value.trim())){
      msg=cfg.text.phone;}
    else if(input.value.trim()&&input.type==='email'&&input.value.indexOf('@')<1){
      msg=cfg.text.email;}
    if(msg){ok=false;show(fieldErr(input.name),msg);}
  });
  return ok;
}
form.addEventListener('submit',function(ev){
  ev.preventDefault();
  clear();
  if(!check()){var bad=form.querySelector('.err:not([hidden])');
    if(bad){bad.parentNode.querySelector('input').focus();}return;}
  var values={};
  form.querySelectorAll('input').forEach(function(input){
    values[input.name]=input.type==='checkbox'?(input.checked?'true':'false'):input.value;
  });
  var body=Object.assign({},cfg.extras,{values:values});
  var button=form.querySelector('button');
  button.disabled=true;
  fetch(cfg.submit,{method:'POST',credentials:'same-origin',
    headers:{'content-type':'application/json'},body:JSON.stringify(body)})
  .then(function(r){return r.json().catch(function(){return {};}).then(function(j){
    return {status:r.status,body:j};});})
  .then(function(a){
    button.disabled=false;
    if(a.status===200||a.status===201){
      form.hidden=true;
      var t=document.getElementById('thanks');
      document.getElementById('thanks-text').textContent=
        a.body.repeat?cfg.text.again:cfg.text.thanks;
      t.hidden=false;t.focus();return;
    }
    var f=(a.body.field||'');
    var el=f.indexOf('values.')===0?fieldErr(f.slice(7)):null;
    var msg=a.body.error||cfg.text.failed;
    if(a.status===503){msg=cfg.text.busy;}
    if(el){show(el,msg);}else{show(general,msg);}
  })
  .catch(function(){button.disabled=false;show(general,cfg.text.busy);});
});
})();
"""

TEXT = {
    "required": "Please fill this in.",
    "consent": "Please agree to continue.",
    "phone": "Please enter a valid phone number.",
    "email": "Please enter a valid e-mail address.",
    "thanks": "Thank you! We have received your details.",
    "again": "Thank you! We already had your details and have updated them.",
    "busy": "We could not send the form just now. Please try again.",
    "failed": "The form could not be sent.",
    "submit": "Submit",
}


def render_page(view: PageView, nonce: str) -> str:
    config = {
        "submit": f"/v1/forms/{view.page_id}/submissions",
        "extras": dict(view.extras),
        "text": TEXT,
    }
    fields = "".join(_field_html(f) for f in view.fields)
    title = escape(view.title)
    return (
        "<!doctype html>"
        '<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f'<title>{title}</title><style nonce="{nonce}">{_STYLE}</style></head><body><main>'
        f"<h1>{title}</h1>"
        f'<form id="lead-form" novalidate data-signed-in="{str(view.signed_in).lower()}">'
        f'{fields}<p class="err" id="form-err" role="alert" hidden></p>'
        f'<button type="submit">{escape(TEXT["submit"])}</button></form>'
        '<section id="thanks" tabindex="-1" hidden><h2>✓</h2><p id="thanks-text"></p></section>'
        "<noscript><p>Please open this page with JavaScript enabled.</p></noscript>"
        f'<script type="application/json" id="cfg">{script_json(config)}</script>'
        f'<script nonce="{nonce}">{_SCRIPT}</script>'
        "</main></body></html>"
    )


def render_message(
    title: str, message: str, nonce: str, link: tuple[str, str] | None = None
) -> str:
    """A page that only says something (the page is unknown, sign-in failed...)."""
    more = f'<p><a href="{escape(link[0])}">{escape(link[1])}</a></p>' if link else ""
    return (
        "<!doctype html>"
        '<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<title>{escape(title)}</title><style nonce="{nonce}">{_STYLE}</style></head>'
        f"<body><main><h1>{escape(title)}</h1><p>{escape(message)}</p>{more}</main></body></html>"
    )
