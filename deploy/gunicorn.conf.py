"""gunicorn's configuration for the web process (`gunicorn -c deploy/gunicorn.conf.py`).

Sized from the environment (docs/DEPLOY.md); the defaults suit a 2-core machine: one worker
process a core, each with a few threads, since a page spends much of its time waiting on
PostgreSQL. Each request's log line is Django's (couponplatform/logs.py), so gunicorn's own
access log is off and its error log is JSON on stdout too.
"""
from couponplatform import env

wsgi_app = "couponplatform.wsgi:application"
bind = env.string("WEB_BIND", f"127.0.0.1:{env.integer('PORT', 8000, minimum=1, maximum=65535)}")
workers = env.integer("WEB_WORKERS", 2, minimum=1)
threads = env.integer("WEB_THREADS", 4, minimum=1)
worker_class = "gthread"
# A request that takes longer is killed and logged: no page of ours should come close.
timeout = env.integer("WEB_TIMEOUT", 30, minimum=1)
graceful_timeout = env.integer("WEB_GRACEFUL_TIMEOUT", 30, minimum=1)
keepalive = 5
# A worker is replaced after this many requests (with jitter, so not all at once): memory
# that creeps up is given back.
max_requests = env.integer("WEB_MAX_REQUESTS", 2000, minimum=0)
max_requests_jitter = max_requests // 10
# Load the app once in the master: a bad setting stops start-up there, once, naming the
# variable; the workers share the loaded code's memory.
preload_app = True
# Only the TLS proxy in front may say a request came over HTTPS (X-Forwarded-Proto).
forwarded_allow_ips = env.string("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = None
errorlog = "-"
loglevel = "info"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "couponplatform.logs.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout",
                             "formatter": "json"}},
    "loggers": {"gunicorn.error": {"handlers": ["console"], "level": "INFO",
                                   "propagate": False}},
}
