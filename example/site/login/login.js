// The login page's script, written against the Gigya Web SDK as a real site
// uses it. Offline the SDK is the stand-in; with an SAP Customer Data Cloud
// site it is Gigya's own gigya.js, and this file does not change.
//
//  1. A Gigya session that is still alive gives a fresh id_token without a
//     password (silent re-login): the person comes straight back.
//  2. Otherwise the login screen is shown; once it reports onLogin, the
//     page asks for an id_token.
//  3. The id_token goes to the site's session endpoint with the page's
//     `return` parameter. The endpoint verifies the token, keeps it in an
//     HttpOnly cookie (this page never stores it) and answers 303 to
//     `return` when that is a path on this site, or 204.
'use strict';

var SESSION_ENDPOINT = '/.idtoken/session'; // session_path in example.Caddyfile
var TOKEN_FIELDS = 'email,firstName,lastName'; // profile fields copied into the token
var TOKEN_LIFETIME = 300; // seconds, Gigya's default; the session cookie lives as long
var SILENT_GUARD = 'idtoken-silent-login'; // sessionStorage: when this page last logged in silently

function status(text, isError) {
	var el = document.getElementById('status');
	el.textContent = text;
	el.className = isError ? 'error' : '';
}

// startSession hands the token to the session endpoint, then goes where
// the endpoint says: fetch follows its 303, and res.url is that page.
function startSession(idToken) {
	var body = new URLSearchParams({id_token: idToken});
	var back = new URLSearchParams(location.search).get('return');
	if (back) {
		body.set('return', back); // the endpoint decides whether it is safe
	}
	fetch(SESSION_ENDPOINT, {method: 'POST', body: body, credentials: 'same-origin', cache: 'no-store'})
		.then(function (res) {
			if (res.redirected) {
				location.replace(res.url);
			} else if (res.ok) {
				location.replace('/');
			} else {
				return res.json().then(function (err) {
					status('The site refused the token: ' + (err.error_description || err.error), true);
				});
			}
		})
		.catch(function (err) {
			status('The session endpoint could not be reached: ' + err, true);
		});
}

function getToken() {
	gigya.accounts.getJWT({
		fields: TOKEN_FIELDS,
		expiration: TOKEN_LIFETIME,
		callback: function (res) {
			if (res.errorCode === 0) {
				startSession(res.id_token);
			} else {
				status('Gigya gave no token: ' + res.errorMessage, true);
			}
		}
	});
}

function showLogin(message) {
	status(message || 'Please log in.');
	gigya.accounts.showScreenSet({
		screenSet: 'Default-RegistrationLogin',
		startScreen: 'gigya-login-screen',
		containerID: 'login',
		onLogin: function () {
			status('Logged in with Gigya; starting your session…');
			getToken();
		}
	});
}

// A silent login that comes back here within seconds means the site did
// not keep its session cookie (e.g. a Secure cookie over plain HTTP):
// stop rather than loop between this page and the protected one.
function silentLoginLooped() {
	var last = Number(sessionStorage.getItem(SILENT_GUARD) || 0);
	sessionStorage.setItem(SILENT_GUARD, String(Date.now()));
	return Date.now() - last < 10000;
}

window.onGigyaServiceReady = function () {
	var query = new URLSearchParams(location.search);
	if (query.has('signed_out')) {
		// The logout link cleared the site's cookie and came here: end the
		// Gigya session too, or the next visit would log in silently.
		sessionStorage.removeItem(SILENT_GUARD);
		gigya.accounts.logout({
			callback: function () { showLogin('You are logged out.'); }
		});
		return;
	}
	gigya.accounts.getJWT({
		fields: TOKEN_FIELDS,
		expiration: TOKEN_LIFETIME,
		callback: function (res) {
			if (res.errorCode !== 0) {
				showLogin(); // 403005: no Gigya session
			} else if (silentLoginLooped()) {
				status('You are logged in with Gigya, but the site did not keep its session cookie. ' +
					'Is the site served over HTTPS (the cookie is Secure)?', true);
			} else {
				status('Your Gigya session is still alive; coming back…');
				startSession(res.id_token);
			}
		}
	});
};
