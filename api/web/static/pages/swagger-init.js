// Starts Swagger UI with the settings the page carries in its JSON data block: the page has no
// inline script, as its Content-Security-Policy allows none.
(function () {
  'use strict';
  var config = JSON.parse(document.getElementById('swagger-ui-config').textContent);
  config.dom_id = '#swagger-ui';
  config.presets = [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset];
  if (config.oauth2RedirectPath) {
    config.oauth2RedirectUrl = window.location.origin + config.oauth2RedirectPath;
    delete config.oauth2RedirectPath;
  }
  window.ui = SwaggerUIBundle(config);
})();
