// gigya.js: an offline stand-in of the Gigya Web SDK (SAP Customer Data
// Cloud), served by caddy-idtoken's Gigya stand-in (internal/gigyastandin).
// It implements the calls a site's login page makes, with the real SDK's
// names, parameters and callback shapes:
//
//   gigya.accounts.showScreenSet({screenSet, startScreen, containerID, onLogin, onError})
//   gigya.accounts.getJWT({fields, expiration, callback})
//   gigya.accounts.getAccountInfo({callback})
//   gigya.accounts.logout({callback})
//   gigya.accounts.addEventHandlers({onLogin, onLogout})
//   window.onGigyaServiceReady(serviceName), called once the SDK is ready
//
// Each call is a REST call to the stand-in this script came from. Like the
// real SDK, it keeps the Gigya login session in a first-party cookie,
// glt_<apiKey>, on the site's own domain, and sends it as login_token: a
// page whose Gigya session is still alive gets a fresh id_token without a
// password. That cookie is the SDK's; the site's own session is the
// HttpOnly cookie its server sets from a verified id_token.
(function () {
  'use strict';

  var script = new URL(document.currentScript.src);
  var apiKey = script.searchParams.get('apikey') || '';
  var api = script.origin + '/';
  var cookieName = 'glt_' + apiKey;
  var handlers = {onLogin: [], onLogout: []};

  function loginToken() {
    var pairs = document.cookie ? document.cookie.split('; ') : [];
    for (var i = 0; i < pairs.length; i++) {
      var eq = pairs[i].indexOf('=');
      if (pairs[i].slice(0, eq) === cookieName) {
        return decodeURIComponent(pairs[i].slice(eq + 1));
      }
    }
    return '';
  }

  function keepLoginToken(value) {
    var secure = location.protocol === 'https:' ? '; Secure' : '';
    var age = value ? '' : '; Max-Age=0';
    document.cookie = cookieName + '=' + encodeURIComponent(value) + '; Path=/; SameSite=Lax' + age + secure;
  }

  // rest calls a method of the REST API. The body is a form, so the
  // browser sends a simple CORS request, as the real SDK does.
  function rest(method, params) {
    var body = new URLSearchParams({apiKey: apiKey, format: 'json'});
    var token = loginToken();
    if (token) {
      body.set('login_token', token);
    }
    Object.keys(params || {}).forEach(function (name) {
      if (params[name] !== undefined && params[name] !== null) {
        body.set(name, String(params[name]));
      }
    });
    return fetch(api + method, {method: 'POST', body: body, credentials: 'omit', cache: 'no-store'})
      .then(function (res) { return res.json(); })
      .catch(function (err) {
        return {errorCode: 500001, statusCode: 500, errorMessage: 'General Server Error', errorDetails: String(err)};
      })
      .then(function (res) {
        res.operation = '/' + method;
        return res;
      });
  }

  // answer hands a REST answer to the caller's callback, with the
  // caller's context, as every SDK call does.
  function answer(params, res) {
    res.context = params && params.context;
    if (params && typeof params.callback === 'function') {
      params.callback(res);
    }
  }

  function fire(event, e) {
    handlers[event].forEach(function (handler) { handler(e); });
  }

  var style = [
    '.gigya-screen-set{font:16px system-ui,sans-serif;max-width:22em}',
    '.gigya-screen-set label{display:block;margin:.6em 0}',
    '.gigya-screen-set input{display:block;width:100%;box-sizing:border-box;padding:.4em;font:inherit}',
    '.gigya-screen-set .gigya-input-submit{margin-top:.8em;padding:.5em 1.4em;width:auto}',
    '.gigya-screen-set .gigya-error-msg{color:#b00020;min-height:1.2em}',
    '.gigya-screen-set .gigya-note{color:#555;font-size:.85em}',
    '.gigya-overlay{position:fixed;inset:0;background:rgba(0,0,0,.4);display:grid;place-items:center}',
    '.gigya-overlay .gigya-screen-set{background:#fff;padding:1.5em;border-radius:8px}'
  ].join('\n');

  function element(tag, attrs, text) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { el.setAttribute(name, attrs[name]); });
    if (text) {
      el.textContent = text;
    }
    return el;
  }

  // showScreenSet renders the login screen: into containerID when given,
  // else as a dialog over the page. Only the login screen exists here.
  function showScreenSet(params) {
    params = params || {};
    if (!document.getElementById('gigya-standin-style')) {
      document.head.appendChild(element('style', {id: 'gigya-standin-style'}, style));
    }
    var container = params.containerID && document.getElementById(params.containerID);
    var overlay = null;
    if (!container) {
      overlay = element('div', {'class': 'gigya-overlay'});
      document.body.appendChild(overlay);
      container = overlay;
    }
    var screen = element('div', {'class': 'gigya-screen-set', 'data-screen-set': params.screenSet || 'Default-RegistrationLogin'});
    var form = element('form', {'class': 'gigya-login-form', id: 'gigya-login-screen', novalidate: ''});
    var email = element('input', {type: 'email', name: 'loginID', autocomplete: 'username', required: ''});
    var password = element('input', {type: 'password', name: 'password', autocomplete: 'current-password', required: ''});
    var error = element('p', {'class': 'gigya-error-msg', role: 'alert'});
    var submit = element('input', {type: 'submit', 'class': 'gigya-input-submit', value: 'Log in'});
    var emailLabel = element('label', {}, 'Email');
    emailLabel.appendChild(email);
    var passwordLabel = element('label', {}, 'Password');
    passwordLabel.appendChild(password);
    form.append(element('h2', {}, 'Log in'), emailLabel, passwordLabel, error, submit,
      element('p', {'class': 'gigya-note'}, 'Gigya stand-in (offline): any email address, password "demo".'));
    screen.appendChild(form);
    container.replaceChildren(screen);
    email.focus();

    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      submit.disabled = true;
      error.textContent = '';
      rest('accounts.login', {loginID: email.value, password: password.value}).then(function (res) {
        submit.disabled = false;
        if (res.errorCode !== 0) {
          error.textContent = res.errorMessage + (res.errorDetails ? ': ' + res.errorDetails : '');
          if (typeof params.onError === 'function') {
            params.onError({eventName: 'error', errorCode: res.errorCode, errorMessage: res.errorMessage, context: params.context});
          }
          return;
        }
        keepLoginToken(res.sessionInfo.cookieValue);
        (overlay || screen).remove();
        var e = {
          eventName: 'login', source: 'showScreenSet', provider: 'site', loginMode: 'standard',
          UID: res.UID, profile: res.profile, context: params.context
        };
        if (typeof params.onLogin === 'function') {
          params.onLogin(e);
        }
        fire('onLogin', e);
      });
    });
  }

  function getJWT(params) {
    params = params || {};
    rest('accounts.getJWT', {fields: params.fields, expiration: params.expiration}).then(function (res) {
      answer(params, res);
    });
  }

  function getAccountInfo(params) {
    rest('accounts.getAccountInfo', {}).then(function (res) {
      answer(params, res);
    });
  }

  function logout(params) {
    rest('accounts.logout', {}).then(function (res) {
      keepLoginToken('');
      fire('onLogout', {eventName: 'logout', context: params && params.context});
      answer(params, res);
    });
  }

  function addEventHandlers(params) {
    Object.keys(handlers).forEach(function (event) {
      if (params && typeof params[event] === 'function') {
        handlers[event].push(params[event]);
      }
    });
  }

  window.gigya = {
    isReady: true,
    thisScript: {APIKey: apiKey},
    accounts: {
      showScreenSet: showScreenSet,
      getJWT: getJWT,
      getAccountInfo: getAccountInfo,
      logout: logout,
      addEventHandlers: addEventHandlers
    }
  };

  // The real SDK finishes loading asynchronously and then calls the page's
  // onGigyaServiceReady; so does this one, so a page may define it before
  // or after the SDK's script tag.
  setTimeout(function () {
    if (typeof window.onGigyaServiceReady === 'function') {
      window.onGigyaServiceReady('gigya');
    }
  }, 0);
}());
