// Shows that the script was served and ran: the time, once a second.
const clock = document.getElementById('clock');
function tick() { clock.textContent = 'The script runs: ' + new Date().toLocaleTimeString(); }
tick();
setInterval(tick, 1000);
