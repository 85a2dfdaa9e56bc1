// A handler whose package ships node_modules/: require resolves from the code directory.
const greeter = require('greeter');

exports.handler = async (event) => ({ greeting: greeter.greet(event.name || 'deps') });
