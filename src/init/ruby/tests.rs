//! The pattern reader on the shapes Rails apps write.

use super::*;

fn class(src: &str) -> Namespace {
    let file = parse_file(src);
    assert!(
        file.statements
            .iter()
            .all(|s| !matches!(s.expr, Expr::Unknown(..))),
        "{:?}",
        file.statements
    );
    file.namespaces
        .into_iter()
        .find(|n| !n.is_module)
        .expect("a class")
}

fn no_unknowns(body: &Body) {
    for s in body {
        assert!(
            !matches!(s.expr, Expr::Unknown(..)),
            "unknown: {:?}",
            s.expr
        );
    }
}

#[test]
fn a_channel_with_nesting_visibility_and_actions() {
    let ns = class(
        r#"
module Chat
  class RoomChannel < ApplicationCable::Channel
    ROLES = %w[admin staff].freeze

    def subscribed
      if params[:room].present?
        stream_from "chat_#{params[:room]}"
      else
        reject
      end
    end

    def speak(data)
      ActionCable.server.broadcast("chat_#{params[:room]}", data)
    end

    private
      def helper = 1
  end
end
"#,
    );
    assert_eq!(ns.name, "Chat::RoomChannel");
    assert_eq!(ns.superclass.as_deref(), Some("ApplicationCable::Channel"));
    let names: Vec<_> = ns
        .defs
        .iter()
        .map(|d| (d.name.as_str(), d.visibility))
        .collect();
    assert_eq!(
        names,
        [
            ("subscribed", Visibility::Public),
            ("speak", Visibility::Public),
            ("helper", Visibility::Private)
        ]
    );
    no_unknowns(&ns.defs[0].body);
    let Expr::If(cond, then, otherwise) = &ns.defs[0].body[0].expr else {
        panic!("{:?}", ns.defs[0].body)
    };
    assert_eq!(cond.as_call().unwrap().name, "present?");
    assert_eq!(then[0].expr.as_call().unwrap().name, "stream_from");
    assert_eq!(otherwise[0].expr, Expr::Name("reject".into()));
    let speak = ns.defs[1].body[0].expr.as_call().unwrap();
    assert_eq!(speak.name, "broadcast");
    assert_eq!(speak.args.len(), 2);
    assert_eq!(ns.statements.len(), 1, "the constant");
}

#[test]
fn command_calls_modifiers_and_keywords() {
    let body = parse_body(
        r#"
identified_by :current_user, :restaurant_id
reject unless ROLES.include?(connection.claims["role"])
return reject if current_user.nil?
on_subscribe :present, unless: :subscription_rejected?
broadcast_to @room, action: :start, user: current_user_attributes
self.current_user = find_verified_user || reject_unauthorized_connection
payload, _header = JWT.decode(token, key, true, algorithm: "HS256")
x = y&.restaurant_id
Rails.logger.info "hello #{x}"
"#,
    );
    no_unknowns(&body);
    let ident = body[0].expr.as_call().unwrap();
    assert_eq!(
        ident.args,
        [
            Expr::Sym("current_user".into()),
            Expr::Sym("restaurant_id".into())
        ]
    );
    let Expr::If(cond, then, _) = &body[1].expr else {
        panic!()
    };
    assert!(matches!(**cond, Expr::Not(_)));
    assert_eq!(then[0].expr, Expr::Name("reject".into()));
    let on_subscribe = body[3].expr.as_call().unwrap();
    assert!(matches!(&on_subscribe.args[1], Expr::Hash(p) if p.len() == 1));
    let broadcast = body[4].expr.as_call().unwrap();
    assert_eq!(broadcast.args.len(), 2);
    assert!(matches!(&body[5].expr, Expr::Assign(_, "=", v) if matches!(**v, Expr::Or(..))));
    assert!(matches!(&body[6].expr, Expr::MultiAssign(t, _) if t.len() == 2));
    assert!(matches!(&body[7].expr, Expr::Assign(_, _, v) if v.as_call().is_some_and(|c| c.safe)));
    assert_eq!(body[8].expr.as_call().unwrap().args.len(), 1);
}

#[test]
fn blocks_lambdas_hashes_and_rescue() {
    let body = parse_body(
        r#"
stream_from "x", coder: ActiveSupport::JSON do |message|
  transmit message
end
periodically every: 30.seconds do
  transmit({ a: 1, "b" => [1, 2] })
end
stream_from "y", ->(m) { transmit m }
begin
  stream_from name
rescue => e
  reject
end
Rails.application.configure do
  config.action_cable.allowed_request_origins = [/https?:\/\/x/, "https://a"]
end
"#,
    );
    no_unknowns(&body);
    let first = body[0].expr.as_call().unwrap();
    assert!(first.block.is_some());
    assert_eq!(first.args.len(), 2);
    assert!(body[1].expr.as_call().unwrap().block.is_some());
    assert!(matches!(
        body[2].expr.as_call().unwrap().args[1],
        Expr::Lambda(..)
    ));
    assert!(matches!(&body[3].expr, Expr::Begin(b, r, _) if b.len() == 1 && r.len() == 1));
    let configure = body[4].expr.as_call().unwrap();
    let Expr::Assign(target, "=", value) = &configure.block.as_ref().unwrap().body[0].expr else {
        panic!()
    };
    assert_eq!(
        target.dotted().as_deref(),
        Some("config.action_cable.allowed_request_origins")
    );
    assert!(matches!(&**value, Expr::Array(items) if items.len() == 2));
}

#[test]
fn unknown_statements_are_kept_and_do_not_derail_the_rest() {
    let ns = class(
        r#"
class C < ApplicationCable::Channel
  def subscribed
    case x
    in { a: }
      1
    end
    stream_from "after"
  end

  def other; end
end
"#,
    );
    let body = &ns.defs[0].body;
    assert!(matches!(body[0].expr, Expr::Unknown(_, 4)), "{body:?}");
    assert_eq!(
        body.last().unwrap().expr.as_call().unwrap().name,
        "stream_from"
    );
    assert_eq!(ns.defs[1].name, "other");
}

#[test]
fn locals_are_not_calls_and_singletons_are_marked() {
    let ns = class(
        r#"
class C
  class << self
    def for_id(id)
      "C:#{id}"
    end
  end

  def self.other = 2

  def subscribed
    name = "a"
    stream_from name
    @room = find_room
    stream_for @room
  end
end
"#,
    );
    assert!(ns.defs[0].singleton && ns.defs[1].singleton && !ns.defs[2].singleton);
    let body = &ns.defs[2].body;
    no_unknowns(body);
    assert_eq!(
        body[1].expr.as_call().unwrap().args[0],
        Expr::Name("name".into())
    );
    assert!(
        matches!(&body[2].expr, Expr::Assign(_, _, v) if **v == Expr::Name("find_room".into()))
    );
}

#[test]
fn lines_are_recorded() {
    let ns = class("class A\n\n  def x\n    a\n    b\n  end\nend\n");
    assert_eq!(ns.line, 1);
    assert_eq!(ns.defs[0].line, 3);
    assert_eq!(ns.defs[0].body[1].line, 5);
}
