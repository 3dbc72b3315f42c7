# NixOS module: services.deploy-ledger runs the deployment ledger itself.
#
#   imports = [ ./deploy/nixos/module.nix ];
#   services.deploy-ledger = {
#     enable = true;
#     package = deploy-ledger;            # a derivation providing bin/ledger
#     createLocalDatabase = true;
#     kafka.bootstrap = "kafka1:9092,kafka2:9092";
#     collect = { enable = true; riemann = "riemann.internal:5555";
#                 slackWebhookFile = "/run/secrets/ledger-slack-webhook"; };
#     publish.enable = true;
#     ingest = { enable = true; workers = 3; };
#   };
#
# Units: deploy-ledger-init (one-shot `ledger init`), deploy-ledger-serve,
# deploy-ledger-project, deploy-ledger-collect, deploy-ledger-publish and the template
# deploy-ledger-ingest@N (N = 1 … ingest.workers, pulled in by deploy-ledger-ingest.target).
# See README.md next to this file.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  # No `with lib;`: every name is bound explicitly, so `nix-instantiate --parse` already
  # reports a misspelt one.
  inherit (lib)
    mkOption
    mkEnableOption
    mkIf
    mkMerge
    types
    optionalAttrs
    optionals
    escapeShellArgs
    hasPrefix
    range
    literalExpression
    ;

  cfg = config.services.deploy-ledger;
  ledger = "${cfg.package}/bin/ledger";

  # The user and group every unit runs as.
  #
  # A fixed, declared system user rather than DynamicUser=true: with the default
  # databaseUrl the ledger reaches PostgreSQL over its local socket with peer
  # authentication, which maps the connecting process's user *name* to the role of the
  # same name (`deploy-ledger`, created by ensureUsers). A stable user also keeps
  # /var/lib/deploy-ledger (a SQLite ledger, when databaseUrl is a file) owned by the same
  # UID across reboots and shared by all the units. Everything else DynamicUser would give
  # is set explicitly below.
  user = "deploy-ledger";

  isPostgres = hasPrefix "postgresql://" cfg.databaseUrl || hasPrefix "postgres://" cfg.databaseUrl;

  environment = {
    LEDGER_URL = cfg.databaseUrl;
  }
  // optionalAttrs (cfg.viewsUrl != null) { LEDGER_VIEWS_URL = cfg.viewsUrl; }
  // optionalAttrs (cfg.kafka.bootstrap != null) { LEDGER_KAFKA = cfg.kafka.bootstrap; };

  # The same hardening on every unit.
  hardening = {
    User = user;
    Group = user;
    StateDirectory = "deploy-ledger";
    StateDirectoryMode = "0750";
    WorkingDirectory = "/var/lib/deploy-ledger";
    ProtectSystem = "strict";
    ProtectHome = true;
    PrivateTmp = true;
    PrivateDevices = true;
    NoNewPrivileges = true;
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectControlGroups = true;
    ProtectClock = true;
    ProtectHostname = true;
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    LockPersonality = true;
    RemoveIPC = true;
    RestrictAddressFamilies = [
      "AF_UNIX"
      "AF_INET"
      "AF_INET6"
    ];
    SystemCallFilter = [ "@system-service" ];
    SystemCallArchitectures = "native";
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    UMask = "0027";
  }
  // optionalAttrs (cfg.environmentFile != null) { EnvironmentFile = cfg.environmentFile; };

  initUnit = "deploy-ledger-init.service";
  dbUnits = optionals cfg.createLocalDatabase [ "postgresql.service" ];

  # A long-running ledger service: restarted on failure, after `ledger init`.
  mkLedgerService = description: execStart: extra: {
    inherit description environment;
    wantedBy = [ "multi-user.target" ];
    wants = [ "network-online.target" ];
    requires = [ initUnit ];
    after = [
      "network-online.target"
      initUnit
    ]
    ++ dbUnits;
    serviceConfig =
      hardening
      // {
        Type = "simple";
        ExecStart = execStart;
        Restart = "on-failure";
        RestartSec = "5s";
      }
      // extra;
  };

  serveArgs = [
    "serve"
    "--host"
    cfg.serve.host
    "--port"
    (toString cfg.serve.port)
  ]
  ++ optionals cfg.serve.allowAnonymousRead [ "--allow-anonymous-read" ]
  # The views are brought up to date by deploy-ledger-project, not by every request.
  ++ optionals cfg.project.enable [ "--no-project" ];

  collectArgs = [
    "collect"
  ]
  ++ optionals (cfg.collect.riemann != null) [
    "--riemann"
    cfg.collect.riemann
  ]
  ++ optionals (cfg.collect.rulesFile != null) [
    "--rules"
    (toString cfg.collect.rulesFile)
  ];

  # The Slack webhook is a secret: systemd copies the file into the unit's credentials
  # directory (LoadCredential, readable only by the unit) and this wrapper hands it to the
  # collector in LEDGER_SLACK_WEBHOOK, so it is neither in the Nix store nor on the
  # command line.
  collectScript = pkgs.writeShellScript "deploy-ledger-collect" ''
    set -eu
    if [ -n "''${CREDENTIALS_DIRECTORY:-}" ] && [ -r "$CREDENTIALS_DIRECTORY/slack-webhook" ]; then
      LEDGER_SLACK_WEBHOOK="$(< "$CREDENTIALS_DIRECTORY/slack-webhook")"
      export LEDGER_SLACK_WEBHOOK
    fi
    exec ${ledger} ${escapeShellArgs collectArgs}
  '';

  publishArgs = [
    "publish"
    "--kafka"
    (toString cfg.kafka.bootstrap)
    "--topic"
    cfg.publish.topic
  ]
  # Signed checkpoints to TOPIC.checkpoints, with the key file LEDGER_CHECKPOINT_KEY names.
  ++ optionals (cfg.publish.checkpointKeyFile != null) [
    "--checkpoint-interval"
    cfg.publish.checkpointInterval
  ];

  ingestArgs = [
    "ingest"
    "--kafka"
    (toString cfg.kafka.bootstrap)
    "--topic"
    cfg.ingest.topic
    "--group"
    cfg.ingest.group
  ]
  ++ optionals (cfg.ingest.deadLetterTopic != null) [
    "--dead-letter-topic"
    cfg.ingest.deadLetterTopic
  ];

  ingestInstances = map (n: "deploy-ledger-ingest@${toString n}.service") (
    range 1 cfg.ingest.workers
  );
in
{
  options.services.deploy-ledger = {
    enable = mkEnableOption "the deployment ledger (deploy-ledger) services";

    package = mkOption {
      type = types.package;
      example = literalExpression "pkgs.python311Packages.callPackage ./deploy-ledger.nix { }";
      description = "The deploy-ledger package; it must provide bin/ledger.";
    };

    databaseUrl = mkOption {
      type = types.str;
      default = "postgresql://deploy-ledger@/deploy-ledger?host=/run/postgresql";
      example = "/var/lib/deploy-ledger/ledger.db";
      description = ''
        The ledger (LEDGER_URL): a postgresql:// URL or a SQLite file. The default is the
        local PostgreSQL over its Unix socket with peer authentication as the
        deploy-ledger user. Put a password in environmentFile (LEDGER_URL=…), not here:
        this value ends up in the Nix store.
      '';
    };

    viewsUrl = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "Keep the views in this database (LEDGER_VIEWS_URL); null: the ledger's.";
    };

    createLocalDatabase = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Enable services.postgresql with a `deploy-ledger` database owned by a
        `deploy-ledger` role (ensureDatabases/ensureUsers), for the default databaseUrl.
      '';
    };

    environmentFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/secrets/deploy-ledger.env";
      description = ''
        A file of VAR=value lines (EnvironmentFile=) for every unit, read by systemd as
        root and never copied into the Nix store: secrets such as LEDGER_URL with a
        password, or any LEDGER_… collector setting (docs/collectors.md).
      '';
    };

    kafka.bootstrap = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "kafka1:9092,kafka2:9092";
      description = "Kafka bootstrap servers (LEDGER_KAFKA), for publish and ingest.";
    };

    serve = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Run `ledger serve` (the HTTP API and dashboard).";
      };
      host = mkOption {
        type = types.str;
        default = "127.0.0.1";
        description = "Address the API listens on.";
      };
      port = mkOption {
        type = types.port;
        default = 8080;
        description = "Port the API listens on.";
      };
      allowAnonymousRead = mkOption {
        type = types.bool;
        default = false;
        description = "Let requests without a bearer token read (never write).";
      };
      openFirewall = mkOption {
        type = types.bool;
        default = false;
        description = "Open serve.port in the firewall.";
      };
    };

    project.enable = mkOption {
      type = types.bool;
      default = true;
      description = "Run `ledger project --follow` (keeps the views up to date).";
    };

    collect = {
      enable = mkEnableOption "`ledger collect` (events to Riemann, alerts to Slack)";
      riemann = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "riemann.internal:5555";
        description = "Riemann server (HOST:PORT); null: no Riemann.";
      };
      slackWebhookFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/run/secrets/ledger-slack-webhook";
        description = ''
          A file holding the Slack incoming-webhook URL, passed with LoadCredential= (a
          string, not a path, so it is never copied into the Nix store). null: no Slack.
        '';
      };
      rulesFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        description = "Alert rules file (TOML); null: the default rules.";
      };
    };

    publish = {
      enable = mkEnableOption "`ledger publish` (every ledger event to a Kafka topic)";
      topic = mkOption {
        type = types.str;
        default = "ledger.events";
        description = "The topic to publish to.";
      };
      checkpointKeyFile = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/var/lib/deploy-ledger-keys/checkpoint.key";
        description = ''
          The Ed25519 private key (`ledger keys generate NAME --out FILE`), owned by
          deploy-ledger, mode 0600; a string, so it never reaches the Nix store. Set: the
          unit signs a checkpoint every checkpointInterval and publishes it to TOPIC.checkpoints.
        '';
      };
      checkpointInterval = mkOption {
        type = types.str;
        default = "60s";
        description = "How often to sign a checkpoint when the ledger grew (60s, 5m, 1h).";
      };
    };

    ingest = {
      enable = mkEnableOption "`ledger ingest --kafka` workers (events from Kafka into the ledger)";
      workers = mkOption {
        type = types.ints.positive;
        default = 1;
        description = ''
          Worker instances (deploy-ledger-ingest@1 … @N), all in one consumer group: at
          most as many as the topic has partitions.
        '';
      };
      topic = mkOption {
        type = types.str;
        default = "ledger.ingest";
        description = "The topic agents and CI publish events to.";
      };
      group = mkOption {
        type = types.str;
        default = "deploy-ledger-ingest";
        description = "The consumer group the workers share.";
      };
      deadLetterTopic = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "Where records that can never be stored go; null: TOPIC.dead-letter.";
      };
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      assertions = [
        {
          assertion = (cfg.publish.enable || cfg.ingest.enable) -> cfg.kafka.bootstrap != null;
          message = "services.deploy-ledger: publish and ingest need kafka.bootstrap.";
        }
        {
          assertion = cfg.createLocalDatabase -> isPostgres;
          message = "services.deploy-ledger: createLocalDatabase needs a postgresql:// databaseUrl.";
        }
      ];

      users.users.${user} = {
        isSystemUser = true;
        group = user;
        home = "/var/lib/deploy-ledger";
        description = "deploy-ledger services";
      };
      users.groups.${user} = { };

      systemd.services.deploy-ledger-init = {
        description = "deploy-ledger: create the ledger's tables";
        inherit environment;
        wantedBy = [ "multi-user.target" ];
        wants = [ "network-online.target" ];
        requires = dbUnits;
        # postgresql-setup.service runs ensureUsers on recent nixpkgs; ordering after a
        # unit that does not exist is harmless.
        after = [
          "network-online.target"
          "postgresql-setup.service"
        ]
        ++ dbUnits;
        serviceConfig = hardening // {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = "${ledger} init";
        };
      };
    }

    (mkIf cfg.createLocalDatabase {
      services.postgresql = {
        enable = true;
        ensureDatabases = [ "deploy-ledger" ];
        ensureUsers = [
          {
            name = "deploy-ledger";
            ensureDBOwnership = true;
          }
        ];
      };
    })

    (mkIf cfg.serve.enable {
      systemd.services.deploy-ledger-serve = mkLedgerService "deploy-ledger: HTTP API and dashboard" "${ledger} ${escapeShellArgs serveArgs}" { };
      networking.firewall.allowedTCPPorts = mkIf cfg.serve.openFirewall [ cfg.serve.port ];
    })

    (mkIf cfg.project.enable {
      systemd.services.deploy-ledger-project = mkLedgerService "deploy-ledger: keep the views up to date" "${ledger} project --follow" { };
    })

    (mkIf cfg.collect.enable {
      systemd.services.deploy-ledger-collect =
        mkLedgerService "deploy-ledger: events to Riemann, alerts to Slack" "${collectScript}"
          (
            optionalAttrs (cfg.collect.slackWebhookFile != null) {
              LoadCredential = [ "slack-webhook:${cfg.collect.slackWebhookFile}" ];
            }
          );
    })

    (mkIf cfg.publish.enable {
      systemd.services.deploy-ledger-publish =
        (mkLedgerService "deploy-ledger: publish ledger events to Kafka" "${ledger} ${escapeShellArgs publishArgs}" { })
        // optionalAttrs (cfg.publish.checkpointKeyFile != null) {
          environment = environment // { LEDGER_CHECKPOINT_KEY = cfg.publish.checkpointKeyFile; };
        };
    })

    (mkIf cfg.ingest.enable {
      # A template unit, one instance per worker; the target pulls in @1 … @workers
      # (NixOS does not enable template instances through wantedBy).
      systemd.services."deploy-ledger-ingest@" =
        (mkLedgerService "deploy-ledger: Kafka ingest worker %i" "${ledger} ${escapeShellArgs ingestArgs}" { })
        // {
          wantedBy = [ ];
        };
      systemd.targets.deploy-ledger-ingest = {
        description = "deploy-ledger: ${toString cfg.ingest.workers} Kafka ingest worker(s)";
        wantedBy = [ "multi-user.target" ];
        wants = ingestInstances;
      };
    })
  ]);
}
